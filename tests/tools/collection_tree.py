"""Copy the collection as git sees it into a fresh `ansible_collections/<ns>/<name>/` tree.

Tools that judge every file under a collection root (ansible-test sanity) or package it
(ansible-galaxy collection build) must see the content a clean checkout would have, not a
developer's work tree: tracked files plus untracked files that are not git-ignored, so new
work is checked before it is committed, but never `tests/output/` (ansible-test's own output)
or symlinks (the `.build/link` view and editor leftovers), which the `symlinks` sanity test
rejects.

Usage: python collection_tree.py DEST  -> prints the collection directory it created under DEST.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
EXCLUDED_PREFIXES = ("tests/output/",)


def collection_name(root):
    """Return (namespace, name) from galaxy.yml; ansible-test reads them from the path instead."""
    meta = yaml.safe_load((root / "galaxy.yml").read_text(encoding="utf-8"))
    return meta["namespace"], meta["name"]


def visible_files(root):
    """Yield repository-relative paths of regular files git tracks or would track."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, stdout=subprocess.PIPE,
    ).stdout.decode("utf-8")
    for relative in sorted(set(filter(None, listing.split("\0")))):
        if relative.startswith(EXCLUDED_PREFIXES):
            continue
        path = root / relative
        # A tracked file deleted in the work tree is listed too; so is a tracked symlink.
        if path.is_symlink() or not path.is_file():
            continue
        yield relative


def copy_collection(root, dest):
    """Copy the visible files of `root` to DEST/ansible_collections/<ns>/<name>; return that path."""
    namespace, name = collection_name(root)
    target = Path(dest) / "ansible_collections" / namespace / name
    for relative in visible_files(root):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, destination)
    return target


def main(argv=None):
    """Command-line entry point used by sanity.sh and the build test."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", help="directory to create ansible_collections/ in")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository to copy")
    args = parser.parse_args(argv)
    print(os.fspath(copy_collection(args.root.resolve(), args.dest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
