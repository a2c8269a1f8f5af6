"""The ``publish`` command: argument parsing and printing only."""
from __future__ import annotations

import argparse
from pathlib import Path

from designate_dist.cli.common import Add, find_distro, number_arg, progress_for
from designate_dist.errors import EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    from designate_dist.publish import PublishRequest, publish
    distro = None
    if args.build is None or args.lock is None:
        distro = find_distro(args)
    if args.build is not None:
        build_dir = Path(args.build)
    else:
        out_root = distro.output_root(Path(args.output) if args.output else None)
        build_dir = out_root / distro.pin.distro_version.pep440
    result = publish(PublishRequest(
        repo=Path(args.repo), build_dir=build_dir.resolve(),
        lock_file=Path(args.lock) if args.lock else distro.lock_file,
        wheelhouse=Path(args.wheelhouse).resolve() if args.wheelhouse else None,
        lock_timeout=args.wait, sign_key=args.sign_key,
        gnupg_home=Path(args.gnupg_home).resolve() if args.gnupg_home else None),
        progress=progress_for(args))
    print(result.summary())
    return EXIT_OK


_seconds = number_arg(float, 0)


def register(add: Add) -> None:
    pub = add("publish", cmd_publish,
              "add a build's debs, wheels, dependency wheels, lock and manifest to a local apt + pip "
              "repository directory (earlier releases are kept)")
    pub.add_argument("--repo", metavar="DIR", required=True,
                     help="the repository directory (created if missing)")
    pub.add_argument("--build", metavar="DIR",
                     help="the build directory with manifest.json (default: OUTPUT/<pep440 of the pin>)")
    pub.add_argument("--output", metavar="DIR", help="output root of the build (default: DISTRO/dist)")
    pub.add_argument("--lock", metavar="FILE",
                     help="the lock file the build was made with (default: DISTRO/build/constraints.txt; "
                          "its sha256 must match the manifest)")
    pub.add_argument("--wheelhouse", metavar="DIR",
                     help="the dependency wheels with SHA256SUMS (default: the deb stage's cache, "
                          "<cache>/wheelhouse/<sha256 of the lock>)")
    pub.add_argument("--sign-key", metavar="KEY",
                     help="sign the apt repository (InRelease, Release.gpg) with this GnuPG secret "
                          "key (fingerprint, key id or user id) and put its public key in "
                          "DIR/signing-key.asc; once signed, every publish must sign")
    pub.add_argument("--gnupg-home", metavar="DIR",
                     help="the GnuPG home holding the key (default: GNUPGHOME, else ~/.gnupg)")
    pub.add_argument("--wait", type=_seconds, metavar="SECONDS", default=600.0,
                     help="how long to wait for another publisher's lock (default: 600)")
