#!/usr/bin/env python3
"""The upstream test stage vs a bare `stestr run` of the same tree and venv, in the same run.

    python bench/bench_tests.py [--distro DIR] [--work-dir DIR] [--concurrency N]

1. warm-up: `designate-dist test` once (prepares the work tree, creates the cached
   venv if missing, writes the tree's metadata); not compared.
2. bare:  `stestr run --concurrency N` in the work tree with the same venv and
   environment, a fresh stestr repository, nothing else.
3. stage: `designate-dist test` again (prepare found up to date, venv check,
   egg_info, exclusion checks, the run, subunit/JUnit/log), also with a fresh
   stestr repository so that neither side has timing data for scheduling.

Prints a table; the target is stage <= 1.1 x bare.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from designate_dist.cache import cache_root
from designate_dist.distro import load_distro
from designate_dist.testsuite import TestRequest, ensure_venv, suite_env

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
          ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--distro", default=str(REPO))
    parser.add_argument("--work-dir", help="work trees (default: a temporary directory)")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tests-") as tmp:
        base = Path(tmp)
        work = Path(args.work_dir).resolve() if args.work_dir else base / "work"
        distro = load_distro(args.distro, work)
        stage_cmd = [sys.executable, "-m", "designate_dist", "--distro", str(distro.root),
                     "--work-dir", str(work), "-q", "test", "--output", str(base / "out"),
                     "--concurrency", str(args.concurrency)]
        warm = timed(stage_cmd)
        tree = distro.work_tree
        venv = ensure_venv(distro.lock_file, tree, cache_root())
        meta = tree.parent / f"{tree.name}.tests" / "meta"
        request = TestRequest(work_tree=tree, lock_file=distro.lock_file,
                              exclusions_file=distro.exclusions_file, output_dir=base / "out",
                              cache_dir=cache_root(), pbr_version=distro.pin.distro_version.pep440)
        env = suite_env(venv, tree, meta, request)
        bare_repo = base / "bare-repo"
        bare_repo.mkdir()
        stestr = [str(venv.path / "bin" / "stestr"), "--repo-url", str(bare_repo)]
        subprocess.run([*stestr, "init"], cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
        bare = timed([*stestr, "run", "--concurrency", str(args.concurrency)], cwd=tree, env=env)
        shutil.rmtree(tree.parent / f"{tree.name}.tests" / "stestr", ignore_errors=True)
        stage = timed(stage_cmd)
        summary = (base / "out" / "tests.log").read_text().splitlines()[4]
    print(f"upstream unit tests of {distro.pin.name} {distro.pin.version} "
          f"(concurrency {args.concurrency}, {os.cpu_count()} CPUs); {summary}")
    print(f"{'case':48} {'seconds':>9} {'vs bare':>9}")
    for name, seconds in (("warm-up: designate-dist test (not compared)", warm),
                          ("bare: stestr run (same tree, venv, env)", bare),
                          ("stage: designate-dist test", stage)):
        print(f"{name:48} {seconds:9.1f} {seconds / bare:8.2f}x")
    ratio = stage / bare
    print(f"stage / bare = {ratio:.2f}x (target <= 1.10x): {'ok' if ratio <= 1.1 else 'over'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
