#!/usr/bin/env python3
"""Rebase triage of a generated series, and applying a series: ours vs raw ``git am`` vs ``quilt push -a``.

    python bench/bench_rebase.py [--patches N] [--repeat R]

Generates an upstream-shaped release 1.0.0 with N modules and a release 1.1.0
that moves, changes or merges some of them, and a series of N patches (one per
module, mail format; every 5th patch lands on lines 1.1.0 shifted, every 7th
near a changed context line, every 11th is merged in 1.1.0, every 13th
conflicts).

triage:  ``designate-dist rebase --onto 1.1.0 --dry-run`` in a new process, from a
         fresh clone (no ``.work``) with a warm archive cache: the first run
         also fills the tree cache (imported trees as git objects), the next
         ones use it.  Compared with plain ``git am -3`` of the same series
         onto 1.1.0 (``git am --skip`` past each conflict), the old release's
         objects present so that its three-way fallback can work.
         Target: < 5 s from a fresh clone with a warm archive cache.
         ``--real``: the same from a fresh clone of this repository, onto
         Designate 23.0.0 (PyPI, cached in the user cache after the first run).
apply:   our apply stage (``designate_dist.apply.apply_series``, one commit per
         patch, fixed identities) vs ``git am`` of the same files on the same
         upstream commit, vs ``quilt push -a`` of the same files on a plain copy.
         Best of R interleaved runs each (medians too).  Target: ours <= 1.5x git am.
         Ours applies every patch in process (designate_dist.tree_apply: blobs
         in, trees and commits out, no work tree) and checks the work tree out
         once.  The "2 git processes" row is the old design's floor: ``git
         apply --index`` and ``git write-tree`` per patch.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from designate_dist.apply import apply_series  # noqa: E402
from designate_dist.distro import load_distro  # noqa: E402
from designate_dist.fetch import fetch  # noqa: E402
from designate_dist.gitrepo import WorkTree  # noqa: E402
from designate_dist.series import read_series  # noqa: E402
from designate_dist.tree_state import read_tree_state, write_tree_state  # noqa: E402
from designate_dist.upstream_import import import_upstream  # noqa: E402
from tests.fixtures.distro import PatchMaker, copy_upstream, git, make_sdist, replace_in, sha256  # noqa: E402


def module(number: int) -> str:
    lines = [f'"""Generated module {number}."""', ""]
    for step in range(1, 9):
        lines += ["", f"def step_{step}(value):", f'    """Step {step} of module {number}."""',
                  f"    result = value + {step}", f"    result = result * {step}", "    return result", ""]
    return "\n".join(lines) + "\n"


def build_fixture(base: Path, count: int) -> tuple[Path, str]:
    """A distro at 1.0.0 with ``count`` patches, and release 1.1.0 in its mirror; returns (distro, sha)."""
    def release(version: str) -> Path:
        tree = copy_upstream(base / f"src-{version}", version)
        for n in range(count):
            path = tree / "designate" / "gen" / f"mod_{n:03d}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(module(n))
        (tree / "designate" / "gen" / "__init__.py").write_text("")
        if version != "1.0.0":
            for n in range(count):
                rel = f"designate/gen/mod_{n:03d}.py"
                if n % 5 == 0:   # offset
                    replace_in(rel, f'"""Generated module {n}."""\n',
                               f'"""Generated module {n}."""\n\nimport logging\n\nLOG = logging.getLogger()\n')(tree)
                elif n % 7 == 0:  # fuzz: a context line two lines above the change
                    replace_in(rel, f'    """Step 4 of module {n}."""\n', f'    """Step four of module {n}."""\n')(tree)
                elif n % 11 == 0:  # merged upstream
                    replace_in(rel, "result = result * 4\n", "result = result * 400\n")(tree)
                elif n % 13 == 0:  # conflict
                    replace_in(rel, "result = result * 4\n", "result = result * 44\n")(tree)
        return tree

    old, new = release("1.0.0"), release("1.1.0")
    mirror = base / "mirror"
    old_archive = make_sdist(old, mirror, version="1.0.0")
    new_archive = make_sdist(new, mirror, version="1.1.0")
    distro = base / "distro"
    for sub in ("build", "cherry-pick", "customs"):
        (distro / sub).mkdir(parents=True)
    (distro / "build" / "upstream.toml").write_text(
        f'[upstream]\nname = "designate"\nversion = "1.0.0"\nsource = "file"\nsha256 = "{sha256(old_archive)}"\n'
        f'path = "{mirror}"\n\n[distro]\nrevision = 1\nmaintainer = "Bench <bench@example.org>"\n')
    (distro / "cherry-pick" / "series").write_text("")
    clean = base / "clean-1.0.0"
    shutil.copytree(old, clean)
    (clean / "PKG-INFO").unlink()
    shutil.rmtree(clean / "designate.egg-info")
    maker = PatchMaker(clean, base / "scratch")
    names = []
    for n in range(count):
        rel = f"designate/gen/mod_{n:03d}.py"
        text = maker.make(replace_in(rel, "result = result * 4\n", "result = result * 400\n"),
                          f"Module {n}: step four is bigger", date=1_700_000_000 + n)
        name = f"{n + 1:04d}-module-{n}.patch"
        (distro / "customs" / name).write_text(text)
        names.append(name)
    (distro / "customs" / "series").write_text("".join(f"{n}\n" for n in names))
    git(distro, "init", "-q", "-b", "main")
    git(distro, "add", "-A")
    git(distro, "commit", "-q", "-m", "bench distro")
    return distro, sha256(new_archive)


def best(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        times.append(fn())
    return min(times)


DESIGNATE_23_0_0 = "9ef0be54042b3dcaab297e3a5798048134def469b5ed6302c8f6283b0914de83"


def extra_patches(clone: Path, count: int) -> int:
    """Add ``count`` customs patches to ``clone``, each a small change to a real 22.0.1 module."""
    distro = load_distro(clone, clone / ".work")
    imported = import_upstream(distro, fetch(distro), path=clone.parent / "extra-base")
    tree = imported.work_tree
    modules = sorted(p for p in (tree / "designate").rglob("*.py")
                     if "tests" not in p.parts and len(p.read_text().splitlines()) > 60)
    step = max(1, len(modules) // max(count, 1))
    names = []
    series = clone / "customs" / "series"
    for number, path in enumerate(modules[::step][:count], start=1):
        lines = path.read_text().splitlines(keepends=True)
        at = 40  # in the body of the module: where upstream edits now and then
        lines.insert(at, f"# designate-dist bench: local change {number}\n")
        path.write_text("".join(lines))
        git(tree, "commit", "-q", "-a", "-m", f"Bench change {number}")
        name = f"{900 + number:04d}-bench-change-{number}.patch"
        (clone / "customs" / name).write_text(git(tree, "format-patch", "-1", "--stdout", "HEAD"))
        git(tree, "reset", "-q", "--hard", "HEAD~1")
        names.append(name)
    series.write_text(series.read_text() + "".join(f"{n}\n" for n in names))
    git(clone, "add", "-A", "customs")
    git(clone, "commit", "-q", "-m", "bench patches")
    shutil.rmtree(tree)
    return len(names)


def real(repeat: int, extra: int) -> int:
    """Triage of this repository's series (plus ``extra`` patches) onto Designate 23.0.0, from fresh clones."""
    with tempfile.TemporaryDirectory(prefix="bench-rebase-real-") as tmp:
        base = Path(tmp)
        clone = base / "clone"
        git(base, "clone", "-q", str(REPO), str(clone))
        added = extra_patches(clone, extra) if extra else 0
        cmd = [sys.executable, "-m", "designate_dist", "--distro", str(clone), "-q", "rebase", "--onto", "23.0.0",
               "--source", "pypi", "--sha256", DESIGNATE_23_0_0, "--dry-run", "--json"]
        # a warm archive cache: both sdists fetched (the first run downloads 23.0.0 once)
        subprocess.run([sys.executable, "-m", "designate_dist", "--distro", str(clone), "-q", "fetch"],
                       check=True, stdout=subprocess.DEVNULL, cwd=REPO)

        def triage() -> float:
            shutil.rmtree(clone / ".work", ignore_errors=True)
            fresh = base / f"fresh-{time.monotonic_ns()}"
            git(base, "clone", "-q", str(clone), str(fresh))  # a fresh clone each time
            start = time.perf_counter()
            proc = subprocess.run([*cmd[:4], str(fresh), *cmd[5:]], cwd=REPO, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            elapsed = time.perf_counter() - start
            if proc.returncode not in (0, 3):
                sys.exit(f"rebase failed ({proc.returncode}): {proc.stderr[-2000:]}")
            triage.report = json.loads(proc.stdout)
            shutil.rmtree(fresh)
            return elapsed
        first = triage()
        warm = [triage() for _ in range(repeat)]
    counts: dict[str, int] = {}
    for patch in triage.report["patches"]:
        counts[patch["status"]] = counts.get(patch["status"], 0) + 1
    print(f"rebase --dry-run 22.0.1 -> 23.0.0, {len(triage.report['patches'])} patches "
          f"({added} generated), from a fresh clone with a warm archive cache "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"  first run (tree cache as it was): {first:.2f} s")
    print(f"  warm: best {min(warm):.2f} s, median {sorted(warm)[len(warm) // 2]:.2f} s of {repeat} "
          f"(target < 5 s)")
    print("  statuses: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--real", action="store_true",
                        help="this repository's series onto Designate 23.0.0 (fetched from PyPI once)")
    parser.add_argument("--extra", type=int, default=48,
                        help="--real: generated patches added to the series (default: 48, 54 in all)")
    args = parser.parse_args()
    if args.real:
        return real(args.repeat, args.extra)
    with tempfile.TemporaryDirectory(prefix="bench-rebase-") as tmp:
        base = Path(tmp)
        os.environ["DESIGNATE_DIST_CACHE"] = str(base / "cache")
        os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
        distro_root, new_sha = build_fixture(base, args.patches)
        env = dict(os.environ)
        cmd = [sys.executable, "-m", "designate_dist", "--distro", str(distro_root), "-q", "rebase",
               "--onto", "1.1.0", "--sha256", new_sha, "--dry-run", "--json"]
        subprocess.run([sys.executable, "-m", "designate_dist", "--distro", str(distro_root), "-q", "fetch"],
                       env=env, check=True, stdout=subprocess.DEVNULL)

        def triage() -> float:
            shutil.rmtree(distro_root / ".work", ignore_errors=True)  # a fresh clone
            start = time.perf_counter()
            proc = subprocess.run(cmd, env=env, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            elapsed = time.perf_counter() - start
            if proc.returncode not in (0, 3):
                sys.exit(f"rebase failed ({proc.returncode}): {proc.stderr[-2000:]}")
            triage.report = json.loads(proc.stdout)
            return elapsed
        first_s = triage()
        triage_s = best(args.repeat, triage)
        counts: dict[str, int] = {}
        for patch in triage.report["patches"]:
            counts[patch["status"]] = counts.get(patch["status"], 0) + 1

        distro = load_distro(distro_root, base / "work")
        series = read_series(distro_root)
        imported = import_upstream(distro, fetch(distro))
        tree = imported.work_tree
        files = [p.path for p in series]

        def ours() -> float:
            git(tree, "checkout", "-q", "-f", "-B", "patched", imported.upstream_commit)
            git_dir = WorkTree(tree).git_dir  # never reuse: apply every time
            write_tree_state(git_dir, dataclasses.replace(read_tree_state(git_dir), series=None))
            start = time.perf_counter()
            result = apply_series(distro, imported, series)
            elapsed = time.perf_counter() - start
            assert len(result.applied) == len(series) and not result.reused
            return elapsed

        def git_am() -> float:
            git(tree, "checkout", "-q", "-f", "-B", "am", imported.upstream_commit)
            start = time.perf_counter()
            git(tree, "am", "-q", "--keep-non-patch", *map(str, files))
            elapsed = time.perf_counter() - start
            count = len(git(tree, "rev-list", f"{imported.upstream_commit}..HEAD").split())
            assert count == len(series), count
            return elapsed

        def floor() -> float:
            """The old design's floor: git apply --index + git write-tree per patch, nothing else."""
            git(tree, "checkout", "-q", "-f", "-B", "floor", imported.upstream_commit)
            start = time.perf_counter()
            for path in files:
                subprocess.run(["git", "apply", "--index", str(path)], cwd=tree, check=True)
                subprocess.run(["git", "write-tree"], cwd=tree, check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - start

        quilt_available = shutil.which("quilt") is not None
        old_distro = load_distro(distro_root, base / "work-new")
        new_distro = old_distro.with_pin(dataclasses.replace(old_distro.pin, version="1.1.0", sha256=new_sha))
        new_import = import_upstream(new_distro, fetch(new_distro))
        am_tree = new_import.work_tree
        git(am_tree, "fetch", "-q", str(tree), f"{imported.upstream_commit}:refs/old-upstream")

        def git_am_3() -> float:
            """Plain git am -3 of the series onto 1.1.0, skipping past every conflict."""
            git(am_tree, "checkout", "-q", "-f", "-B", "am3", new_import.upstream_commit)
            start = time.perf_counter()
            proc = subprocess.run(["git", "am", "-3", "-q", *map(str, files)], cwd=am_tree,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while proc.returncode != 0:
                proc = subprocess.run(["git", "am", "-3", "-q", "--skip"], cwd=am_tree,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return time.perf_counter() - start
        am3_s = best(args.repeat, git_am_3)

        def quilt() -> float:
            plain = base / "quilt-tree"
            shutil.rmtree(plain, ignore_errors=True)
            plain.mkdir()
            archive = subprocess.run(["git", "archive", "--format=tar", imported.upstream_commit], cwd=tree,
                                     check=True, stdout=subprocess.PIPE).stdout
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(plain)
            patches = plain / "patches"
            patches.mkdir()
            for path in files:
                shutil.copy(path, patches / path.name)
            (patches / "series").write_text("".join(f"{p.name}\n" for p in files))
            qenv = {**env, "QUILT_PATCHES": "patches", "QUILTRC": "/dev/null"}
            start = time.perf_counter()
            subprocess.run(["quilt", "push", "-a", "-q"], cwd=plain, env=qenv, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            return time.perf_counter() - start

        runs: dict[str, list[float]] = {"ours": [], "am": [], "floor": [], "quilt": []}
        for _ in range(args.repeat):  # interleaved, so that load on the machine hits all alike
            runs["am"].append(git_am())
            runs["ours"].append(ours())
            runs["floor"].append(floor())
            if quilt_available:
                runs["quilt"].append(quilt())
        ours_s, am_s = min(runs["ours"]), min(runs["am"])
        quilt_s = min(runs["quilt"]) if quilt_available else None

    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    load = os.getloadavg()[0]
    print(f"rebase triage and apply, {args.patches} generated patches, best of {args.repeat} "
          f"({os.cpu_count()} CPUs, load average {load:.1f} at the end)")
    print(f"{'case':48} {'seconds':>9} {'ratio':>12}")
    print(f"{'triage, fresh clone, tree cache cold (1st run)':48} {first_s:9.2f}")
    print(f"{'triage, fresh clone, warm caches':48} {triage_s:9.2f} {triage_s / 5:>8.2f} of 5 s target")
    print(f"  statuses: {summary}")
    print(f"{'  git am -3 of the same series onto 1.1.0':48} {am3_s:9.2f}  (triage {triage_s / am3_s:.2f}x)")
    print(f"{'apply: git am (baseline)':48} {am_s:9.3f} {1.0:>8.2f}x")
    print(f"{'apply: designate-dist apply_series':48} {ours_s:9.3f} {ours_s / am_s:>8.2f}x  (target <= 1.5x)")
    medians = {k: sorted(v)[len(v) // 2] for k, v in runs.items() if v}
    print(f"{'  (medians: git am':48} {medians['am']:9.3f}  ours {medians['ours']:.3f} = "
          f"{medians['ours'] / medians['am']:.2f}x)")
    floor_s = min(runs["floor"])
    print(f"{'  (old design: 2 git processes a patch, no more':48} {floor_s:9.3f} {floor_s / am_s:>8.2f}x)")
    if quilt_s is not None:
        print(f"{'apply: quilt push -a':48} {quilt_s:9.3f} {quilt_s / am_s:>8.2f}x")
    else:
        print(f"{'apply: quilt push -a':48} {'(quilt not installed)':>22}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
