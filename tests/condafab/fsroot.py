"""Writing a host's files under a filesystem root, with a ledger of the bytes written.

Everything a fixture creates lives under ``FsRoot.root`` (a temp dir, or a test host's overlay
upper dir) while paths written *into* files (records, ``environments.txt``, symlink targets) are
the host's own absolute paths.  ``FsRoot.real("/opt/conda")`` is the only translation.
"""

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Ledger:
    """Bytes the builder put in one tree, from what it wrote rather than from a walk.

    ``apparent`` counts every name (regular files and symlinks, as ``find -printf %s`` would);
    ``unique`` counts each inode once (what ``du --apparent-size`` adds for non-directories).
    """

    apparent: int = 0
    unique: int = 0
    files: int = 0
    symlinks: int = 0

    def new_inode(self, size):
        self.apparent += size
        self.unique += size
        self.files += 1

    def new_name(self, size):
        """Another name for an inode counted elsewhere (a hard link)."""
        self.apparent += size
        self.files += 1

    def symlink(self, target):
        self.apparent += len(os.fsencode(target))
        self.unique += len(os.fsencode(target))
        self.symlinks += 1


class FsRoot:
    """The host's ``/`` on the controller, plus a writer that knows which dirs exist.

    The ``*_real`` writers take controller paths as strings: pathlib costs seconds over the
    hundreds of thousands of files of a big fixture.  Writing is serial on purpose: on a busy
    ext4 disk, threads made file creation slower (journal contention), not faster.
    """

    def __init__(self, root):
        self.root = Path(root).absolute()
        self._dirs = set()
        self._owned = []  # (host path, uid, gid), applied by chown_all()

    def real(self, host_path):
        """Controller path of an absolute in-host path."""
        host_path = str(host_path)
        if not host_path.startswith("/"):
            raise ValueError(f"in-host paths are absolute: {host_path!r}")
        return self.root / host_path.lstrip("/")

    def makedirs(self, real_dir):
        if real_dir not in self._dirs:
            os.makedirs(real_dir, exist_ok=True)
            self._dirs.add(real_dir)

    def write(self, host_path, data: bytes, ledger: Ledger = None, mode=0o644):
        """Create (or replace) a file; returns its controller path."""
        real = str(self.real(host_path))
        self.write_real(real, data, ledger, mode)
        return real

    def write_real(self, real: str, data: bytes, ledger: Ledger = None, mode=0o644):
        self.makedirs(os.path.dirname(real))
        fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        if ledger is not None:
            ledger.new_inode(len(data))

    def link_real(self, source_real, target_real, size, ledger: Ledger = None):
        """Hard link ``target`` to ``source`` (same filesystem: both under this root)."""
        self.makedirs(os.path.dirname(target_real))
        os.link(source_real, target_real)
        if ledger is not None:
            ledger.new_name(size)

    def symlink_real(self, target_host_path, link_real, ledger: Ledger = None):
        """A symlink whose target is an in-host absolute path (resolves inside the host)."""
        self.makedirs(os.path.dirname(link_real))
        os.symlink(target_host_path, link_real)
        if ledger is not None:
            ledger.symlink(target_host_path)

    def own(self, host_path, user):
        """Give ``host_path`` (recursively, at the end of the build) to ``user``."""
        if user is not None:
            self._owned.append((host_path, user.uid, user.gid))

    def chown_all(self):
        """Apply ownership; only root can, and unprivileged unit tests need the same tree."""
        if os.geteuid() != 0:
            return
        for host_path, uid, gid in self._owned:
            top = self.real(host_path)
            if not os.path.lexists(top):
                continue
            os.lchown(top, uid, gid)
            for dirpath, dirnames, filenames in os.walk(top):
                for name in dirnames + filenames:
                    os.lchown(os.path.join(dirpath, name), uid, gid)
