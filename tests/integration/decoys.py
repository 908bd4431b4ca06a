"""Trees a test must find unchanged after a module run, compared by checksum from the controller.

A test builds them inside a host's root (the overlay is visible from the controller), owned by
whoever the attack needs, and compares :func:`checksums` before and after the module ran.
"""

import hashlib
import os
import stat
from pathlib import Path


def checksums(top: Path) -> dict:
    """``{relative path: (type and mode, uid, gid, sha256 of content or link target)}`` under ``top``
    (as bytes, so names that are not UTF-8 count too); empty when ``top`` is gone."""
    top_b = os.fsencode(str(top))
    found = {}
    if not os.path.lexists(top_b):
        return found
    for base, dirs, files in os.walk(top_b):
        for name in sorted(dirs + files) + ([b"."] if base == top_b else []):
            path = os.path.normpath(os.path.join(base, name))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    content = handle.read()
            else:
                content = b""
            found[os.path.relpath(path, top_b)] = (st.st_mode, st.st_uid, st.st_gid, hashlib.sha256(content).hexdigest())
    return found


def write(path: Path, data: bytes, owner=(0, 0)) -> Path:
    """A file (parents made as needed, each given to ``owner`` when it is a user's)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chown(str(path), *owner)
    return path


def give(path: Path, owner, upto: Path):
    """Hand ``path`` and its parents below ``upto`` to ``owner`` (a user's own directories)."""
    path = Path(path)
    while path != Path(upto):
        os.lchown(str(path), *owner)
        path = path.parent
