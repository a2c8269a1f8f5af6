#!/usr/bin/env python3
"""The deb stage alone: cold (empty wheelhouse cache) vs warm (wheelhouse reused).

    python bench/bench_deb.py --wheels dist/22.0.1.post1 [--distro DIR]

Takes the wheels of an earlier `designate-dist build` (the patched Designate and
designate-dist), builds the virtualenv package twice into a fresh cache, and
prints both times, the .deb size and whether the two .deb files are identical.
The pip download cache of the user is left alone, so "cold" measures building
the wheelhouse from it, not the network.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

from designate_dist.deb import DebRequest, build_debs
from designate_dist.distro import load_distro

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheels", required=True, type=Path,
                        help="a build output directory holding the wheels")
    parser.add_argument("--distro", default=str(REPO), type=Path)
    args = parser.parse_args()
    distro = load_distro(args.distro)
    version = distro.pin.distro_version
    wheels = sorted(args.wheels.glob("*.whl"), key=lambda w: not w.name.startswith(f"{distro.pin.name}-"))
    if not wheels or not wheels[0].name.startswith(f"{distro.pin.name}-"):
        sys.exit(f"no {distro.pin.name} wheel in {args.wheels}")
    rows = []
    digests = []
    with tempfile.TemporaryDirectory(prefix="bench-deb-") as tmp:
        base = Path(tmp)
        for case in ("cold (wheelhouse built)", "warm (wheelhouse reused)"):
            start = time.perf_counter()
            result = build_debs(DebRequest(
                packaging_dir=distro.root / "debian", work_tree=base, wheels=tuple(wheels),
                lock_file=distro.lock_file, version=version, maintainer=distro.pin.maintainer,
                source_date_epoch=1_700_000_000, output_dir=base / f"out-{len(rows)}",
                cache_dir=base / "cache"))
            elapsed = time.perf_counter() - start
            deb = result.debs[0]
            digests.append(hashlib.sha256(deb.read_bytes()).hexdigest())
            rows.append((case, elapsed, deb.stat().st_size))
    print(f"deb stage of {distro.root} ({version.debian})")
    print(f"{'case':28} {'seconds':>9} {'deb MB':>8}")
    for case, seconds, size in rows:
        print(f"{case:28} {seconds:9.1f} {size / 1e6:8.1f}")
    print(f"identical .deb: {'yes' if digests[0] == digests[1] else 'NO'} ({digests[0][:16]}...)")
    return 0 if digests[0] == digests[1] else 1


if __name__ == "__main__":
    sys.exit(main())
