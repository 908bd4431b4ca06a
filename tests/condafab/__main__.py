"""``python -m condafab build --root DIR --seed N [--packages 2000 --files 100 --envs 10 | --layout NAME]``

Builds a fixture under DIR, prints a summary, and with ``--manifest FILE`` writes the manifest.
"""

import argparse
import sys
from pathlib import Path

from condafab import User
from condafab.layouts import DEFAULT_USERS, LAYOUTS
from condafab.scale import build


def _user(spec):
    """``name:uid:gid:home`` -> User."""
    name, uid, gid, home = spec.split(":", 3)
    return User(name, int(uid), int(gid), home)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m condafab", description="Write a realistic conda/pip cache fixture under a directory.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("build", help="build a fixture")
    cmd.add_argument("--root", required=True, type=Path, help="filesystem root to write under (the host's /)")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--layout", choices=sorted(LAYOUTS), help="a small fleet layout instead of the scalable fixture")
    cmd.add_argument("--packages", type=int, default=2000)
    cmd.add_argument("--files", type=int, default=100, help="payload files per package")
    cmd.add_argument("--envs", type=int, default=10)
    cmd.add_argument("--user", action="append", type=_user, default=None, metavar="NAME:UID:GID:HOME",
                     help="a login to populate (repeatable); layouts default to alice and bob")
    cmd.add_argument("--malformed-condarc", action="store_true", help="layouts only: add a broken ~/.condarc")
    cmd.add_argument("--manifest", type=Path, help="write the manifest as JSON here")
    args = parser.parse_args(argv)
    if args.layout:
        manifest = LAYOUTS[args.layout](args.root, args.seed, args.user or list(DEFAULT_USERS), malformed=args.malformed_condarc)
    else:
        manifest = build(args.root, args.seed, packages=args.packages, files=args.files, envs=args.envs, users=args.user or ())
    print(manifest.summary())
    if args.manifest:
        manifest.to_json(args.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
