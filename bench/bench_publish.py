#!/usr/bin/env python3
"""publish: a real build into a fresh repository, again (idempotent), vs a plain copy.

    python bench/bench_publish.py [--distro DIR] [--build DIR] [--pip]

The baseline copies the same files (the build's debs and wheels, the
wheelhouse) with shutil.copyfile into an empty directory: what publishing
costs beyond moving the bytes is verification, fsync, dpkg-deb and the
indexes.  ``--pip`` also installs the release from the repository into a
throwaway virtualenv, offline (PIP_CONFIG_FILE=/dev/null), and times it.
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

from designate_dist.distro import load_distro
from designate_dist.publish import PublishRequest, default_wheelhouse, publish

REPO = Path(__file__).resolve().parents[1]


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def copy_all(files: list[Path], dest: Path) -> None:
    dest.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, dest / path.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--distro", default=str(REPO), type=Path)
    parser.add_argument("--build", type=Path, help="default: DISTRO/dist/<pep440 of the pin>")
    parser.add_argument("--pip", action="store_true", help="also time an offline pip install")
    args = parser.parse_args()
    distro = load_distro(args.distro)
    pep440 = distro.pin.distro_version.pep440
    build = (args.build or distro.root / "dist" / pep440).resolve()
    manifest = json.loads((build / "manifest.json").read_text())
    house = default_wheelhouse(manifest["inputs"]["lock"])
    files = sorted(p for p in build.iterdir() if p.suffix in (".deb", ".whl"))
    files += sorted(house.glob("*.whl"))
    size = sum(p.stat().st_size for p in files)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        base = Path(tmp)
        baseline, _ = timed(lambda: copy_all(files, base / "copy"))
        rows.append(("baseline: copy the files", baseline, ""))
        request = PublishRequest(repo=base / "repo", build_dir=build, lock_file=distro.lock_file)
        seconds, result = timed(lambda: publish(request))
        rows.append(("publish into a fresh repo", seconds, f"{len(result.added)} files added"))
        seconds, result = timed(lambda: publish(request))
        rows.append(("publish again (no change)", seconds,
                     "already published" if result.already_published else "CHANGED"))
        if args.pip:
            venv = base / "venv"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
            env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
            seconds, _ = timed(lambda: subprocess.run(
                [str(venv / "bin" / "pip"), "install", "--quiet", "--no-cache-dir",
                 "--index-url", f"file://{request.repo}/simple",
                 "-c", f"file://{request.repo}/constraints/{pep440}.txt", f"designate=={pep440}"],
                check=True, env=env))
            rows.append(("pip install from the repo", seconds, "offline, into a new venv"))
    print(f"publish {build} ({len(files)} debs/wheels, {size / 1e6:.1f} MB)")
    print(f"{'case':30} {'seconds':>8} {'x copy':>7}  note")
    for case, seconds, note in rows:
        print(f"{case:30} {seconds:8.2f} {seconds / baseline:7.1f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
