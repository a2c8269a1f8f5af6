#!/usr/bin/env python3
"""The backports report on ~40 upstream commits: ours (one scratch index) vs a work tree per commit.

    python bench/bench_backports.py [--commits N] [--repeat R]
    python bench/bench_backports.py --upstream REPO --distro DIR [--to master]   # a real copy

Generates an upstream git repository: release tag 1.0.0 on stable/1.0 (with
two cherry-picked backports), then N commits on master, one module each (every
4th conflicts with our tree, every 6th is carried by our series under another
subject, every 9th is a security fix, every 10th is devstack-only), and a
distro pinned to 1.0.0 by git.

ours:      ``designate-dist backports --to master --json`` in a new process,
           cold (the series applied in a scratch tree) and warm (the prepared
           work tree reused).  Target: < 10 s for ~40 commits on 2 CPUs.
baseline:  what the index avoids: one ``git worktree add`` of the patched tree
           per commit, then ``git apply --check`` in it, then removal.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.distro import copy_upstream, git  # noqa: E402


def module(number: int) -> str:
    lines = [f'"""Generated module {number}."""', ""]
    for step in range(1, 6):
        lines += ["", f"def step_{step}(value):", f"    return value + {step}", ""]
    return "\n".join(lines) + "\n"


def build_fixture(base: Path, count: int) -> tuple[Path, Path]:
    """(upstream repository, distro) as the module docstring describes."""
    up = copy_upstream(base / "upstream", "1.0.0")
    (up / "PKG-INFO").unlink()
    shutil.rmtree(up / "designate.egg-info")
    (up / "designate" / "gen").mkdir()
    for n in range(count):
        (up / "designate" / "gen" / f"m{n:03d}.py").write_text(module(n))
    (up / "devstack").mkdir()
    (up / "devstack" / "plugin.sh").write_text("# plugin\n")
    git(up, "init", "-q", "-b", "master")
    git(up, "add", "-A")
    git(up, "commit", "-q", "-m", "Initial import")
    base_commit = git(up, "rev-parse", "HEAD").strip()
    carried: list[str] = []
    for n in range(count):
        path = up / "designate" / "gen" / f"m{n:03d}.py"
        if n % 10 == 9:
            path = up / "devstack" / "plugin.sh"
            path.write_text(path.read_text() + f"# step {n}\n")
            subject, body = f"Fix devstack plugin step {n}", "Closes-Bug: #1"
        elif n % 4 == 3:  # a master-only rename first, so the fix conflicts on the release
            path.write_text(path.read_text().replace("return value + 1", "return value + 1  # renamed"))
            git(up, "commit", "-q", "-am", f"Rename step 1 of module {n}")
            path.write_text(path.read_text().replace("+ 1  # renamed", "+ 1  # fixed"))
            subject, body = f"Fix step 1 of module {n}", "Closes-Bug: #2"
        else:
            path.write_text(path.read_text().replace("return value + 2", "return value + 20"))
            subject = f"Fix injection in module {n}" if n % 9 == 0 else f"Change module {n}"
            body = "Closes-Bug: #3\nChange-Id: I" + f"{n:040d}"
        git(up, "commit", "-q", "-am", f"{subject}\n\n{body}")
        if n % 6 == 1 and n % 4 != 3 and n % 10 != 9:
            carried.append(git(up, "diff", "HEAD^", "HEAD"))
    git(up, "checkout", "-q", "-b", "stable/1.0", base_commit)
    git(up, "tag", "-a", "1.0.0", "-m", "1.0.0")
    git(up, "checkout", "-q", "master")
    distro = base / "distro"
    for sub in ("build", "cherry-pick", "customs"):
        (distro / sub).mkdir(parents=True)
    (distro / "build" / "upstream.toml").write_text(
        '[upstream]\nname = "designate"\nversion = "1.0.0"\nsource = "git"\n'
        f'url = "{up}"\ntag = "1.0.0"\ncommit = "{base_commit}"\n')
    (distro / "build" / "constraints.txt").write_text("pbr==7.1.3\n")
    names = []
    for number, diff in enumerate(carried, 1):
        name = f"{number:04d}-ours-{number}.patch"
        (distro / "cherry-pick" / name).write_text(f"Description: ours {number}\n---\n{diff}")
        names.append(name)
    (distro / "cherry-pick" / "series").write_text("".join(n + "\n" for n in names))
    (distro / "customs" / "series").write_text("")
    git(distro, "init", "-q", "-b", "main")
    git(distro, "add", "-A")
    git(distro, "commit", "-q", "-m", "distro")
    return up, distro


def ours(upstream: Path, distro: Path, to: str, env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "designate_dist", "--distro", str(distro), "backports",
                           "--upstream", str(upstream), "--to", to, "--json"],
                          env=env, text=True, capture_output=True, cwd=REPO)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr)
    return elapsed, json.loads(proc.stdout)


def baseline(upstream: Path, tree: Path, shas: list[str]) -> float:
    """A work tree of the patched tree per commit, ``git apply --check`` in it."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for number, sha in enumerate(shas):
            diff = subprocess.run(["git", "-C", str(upstream), "diff-tree", "-p", "--full-index", sha],
                                  text=True, capture_output=True, check=True).stdout
            wt = Path(tmp) / f"wt{number}"
            subprocess.run(["git", "-C", str(tree), "worktree", "add", "-q", "--detach", str(wt)], check=True)
            subprocess.run(["git", "apply", "--check", "-"], input=diff, text=True, capture_output=True, cwd=wt)
            subprocess.run(["git", "-C", str(tree), "worktree", "remove", "--force", str(wt)], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=36)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--upstream", type=Path, help="a real upstream copy (with --distro)")
    parser.add_argument("--distro", type=Path)
    parser.add_argument("--to", default="master")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-backports-") as tmp:
        env = {**os.environ, "DESIGNATE_DIST_CACHE": str(Path(tmp) / "cache"), "PYTHONPATH": str(REPO)}
        if args.upstream:
            upstream, distro = args.upstream.resolve(), args.distro.resolve()
            env["DESIGNATE_DIST_CACHE"] = os.environ.get("DESIGNATE_DIST_CACHE", "")
            if not env["DESIGNATE_DIST_CACHE"]:
                del env["DESIGNATE_DIST_CACHE"]
        else:
            upstream, distro = build_fixture(Path(tmp), args.commits)
        cold, data = ours(upstream, distro, args.to, env)
        subprocess.run([sys.executable, "-m", "designate_dist", "--distro", str(distro), "-q", "prepare"],
                       env=env, check=True, capture_output=True, cwd=REPO)
        warm = min(ours(upstream, distro, args.to, env)[0] for _ in range(args.repeat))
        work_tree = next((distro / ".work").glob("designate-*"))
        shas = [c["commit"] for c in data["commits"]]
        base = baseline(upstream, work_tree, shas)
        kinds: dict[str, int] = {}
        for entry in data["commits"]:
            kinds[entry["applies"]] = kinds.get(entry["applies"], 0) + 1
        print(f"{len(shas)} commits ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}); "
              f"{os.cpu_count()} CPUs")
        print(f"ours, cold (series applied in a scratch tree): {cold:6.2f} s")
        print(f"ours, warm (prepared work tree), best of {args.repeat}: {warm:6.2f} s")
        print(f"baseline, a work tree per commit:             {base:6.2f} s")


if __name__ == "__main__":
    main()
