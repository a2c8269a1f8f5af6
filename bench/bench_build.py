#!/usr/bin/env python3
"""Cold vs warm build of this distribution repository.

    python bench/bench_build.py [--full] [--distro DIR]

cold: an empty cache and no work tree (download, import, apply, [tests,] wheels, debs);
warm: the same command again with nothing changed (the build is found up to date);
touch: a new distro revision in a copy of the pin (work tree, venv and wheelhouse reused,
       artifacts rebuilt).
Without --full the upstream test stage is skipped (--skip-tests) in every row.
Prints a table; the target is warm <= 5 % of cold.
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

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="include the upstream test stage")
    parser.add_argument("--distro", default=str(REPO))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        base = Path(tmp)
        distro = base / "distro"
        shutil.copytree(args.distro, distro, ignore=shutil.ignore_patterns(".work", "dist", ".venv",
                                                                            ".stestr", "__pycache__"))
        env = {**os.environ, "DESIGNATE_DIST_CACHE": str(base / "cache"), "SOURCE_DATE_EPOCH": "1700000000"}
        cmd = [sys.executable, "-m", "designate_dist", "--distro", str(distro), "-q", "build",
               "--output", str(base / "out")]
        if not args.full:
            cmd.append("--skip-tests")
        cold = timed(cmd, env)
        warm = timed(cmd, env)
        pin = distro / "build" / "upstream.toml"
        pin.write_text(pin.read_text().replace("revision = 1", "revision = 2"))
        touch = timed(cmd, env)
    rows = [("cold (empty cache, no work tree)", cold, 1.0),
            ("warm (nothing changed)", warm, warm / cold),
            ("new revision (caches reused)", touch, touch / cold)]
    print(f"build of {args.distro} ({'with' if args.full else 'without'} upstream tests)")
    print(f"{'case':36} {'seconds':>9} {'vs cold':>9}")
    for name, seconds, ratio in rows:
        print(f"{name:36} {seconds:9.2f} {ratio:9.1%}")
    print(f"target: warm <= 5% of cold: {'met' if warm / cold <= 0.05 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
