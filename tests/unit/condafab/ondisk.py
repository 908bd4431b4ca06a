"""Independent readers of a built tree: what is *on disk*, found without the builder's code.

The tests compare these with the manifest (the builder's intent); neither side borrows from the
other, so a wrong manifest and a wrong tree cannot agree by construction.
"""

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path


def records(manifest, prefix):
    """``{stem: record}`` for ``<prefix>/conda-meta/*.json``."""
    meta = manifest.real(prefix) / "conda-meta"
    return {p.stem: json.loads(p.read_text()) for p in sorted(meta.glob("*.json"))}


def all_records(manifest):
    """``(prefix, stem, record)`` for every environment the manifest lists."""
    for prefix in manifest.envs:
        for stem, record in records(manifest, prefix).items():
            yield prefix, stem, record


def extracted_dirs(cache_real):
    """Names of the package dirs conda would count: those with ``info/index.json``."""
    return sorted(p.name for p in cache_real.iterdir() if (p / "info" / "index.json").is_file())


def tarballs(cache_real):
    return sorted(p.name for p in cache_real.iterdir() if p.name.endswith((".conda", ".tar.bz2")) and p.is_file())


def has_multilink(top):
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            if os.lstat(os.path.join(dirpath, name)).st_nlink > 1:
                return True
    return False


def snapshot(top):
    """``{relative path: description}`` of a tree: file bytes' sha256 and mode, symlink targets,
    directories, and which names share an inode (numbered by first appearance)."""
    out = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            else:
                group = inodes.setdefault((st.st_dev, st.st_ino), len(inodes)) if st.st_nlink > 1 else None
                out[rel] = ("file", hashlib.sha256(Path(path).read_bytes()).hexdigest(), stat.S_IMODE(st.st_mode), group)
    return out


def du(path, *args):
    """``du -s --block-size=1 [args] path`` in bytes."""
    result = subprocess.run(["du", "-s", "--block-size=1", *args, str(path)], check=True, capture_output=True, text=True)
    return int(result.stdout.split()[0])


def find_sizes(path, types):
    """Sum of ``%s`` over ``find path -type <types>`` (every name counted)."""
    result = subprocess.run(["find", str(path), "-type", types, "-printf", "%s\\n"], check=True, capture_output=True, text=True)
    return sum(int(line) for line in result.stdout.split())
