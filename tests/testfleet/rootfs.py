"""The cached Debian rootfs every test host is an overlay of.

Built once per version with ``mmdebstrap`` from this machine's own apt sources (so it works on
any machine that can install Debian packages, mirror or not), then finished in place: sshd host
keys, the ``ansible`` login user with passwordless sudo as cloud images ship it, and an sshd
drop-in.  Building into a temporary directory and renaming it at the end means a half-built tree
is never mistaken for a cached one; a lock file serialises concurrent builders.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SUITE = "bookworm"
# python3 for ansible modules, acl so `become_user` to an unprivileged user works, passwd for
# useradd inside hosts, bzip2/zstd so archives found on hosts can be handled by their own tools.
PACKAGES = ("python3", "openssh-server", "sudo", "passwd", "acl", "bzip2", "zstd")
# Bump when the finishing steps below change, so every machine rebuilds instead of reusing a tree
# that lacks them.
RECIPE = 1
VERSION = "{0}-r{1}-{2}".format(
    SUITE, RECIPE, hashlib.sha256(",".join(PACKAGES).encode()).hexdigest()[:8]
)

LOGIN_USER = "ansible"
LOGIN_UID = 1000
READY_MARKER = ".testfleet-rootfs"

SSHD_DROPIN = """\
# Test fleet: key-only logins for the ansible user, quick connects for many parallel sessions.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
MaxStartups 200:30:400
MaxSessions 50
"""


def cache_dir():
    """Where built artifacts live across sessions (XDG cache, like any other tool)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pkgcache-fleet"


def rootfs_path(version=VERSION):
    return cache_dir() / "rootfs-{0}".format(version)


def is_ready(path):
    marker = path / READY_MARKER
    return marker.is_file() and marker.read_text().strip() == path.name


def apt_sources():
    """The machine's enabled apt source files, passed to mmdebstrap as they are."""
    etc = Path("/etc/apt")
    candidates = [etc / "sources.list"]
    candidates += sorted((etc / "sources.list.d").glob("*.list"))
    candidates += sorted((etc / "sources.list.d").glob("*.sources"))
    found = [p for p in candidates if p.is_file() and p.stat().st_size > 0]
    if not found:
        raise RuntimeError("no apt sources configured on this machine (/etc/apt/sources.list*)")
    return found


def _chroot(root, *argv):
    subprocess.run(["chroot", str(root)] + list(argv), check=True, stdout=subprocess.DEVNULL)


def _finish(root):
    """Turn a bare debootstrap tree into a host image: keys, login user, sudo, sshd policy."""
    _chroot(root, "ssh-keygen", "-A")
    _chroot(root, "useradd", "--create-home", "--uid", str(LOGIN_UID), "--user-group",
            "--shell", "/bin/bash", LOGIN_USER)
    sudoers = root / "etc/sudoers.d/testfleet-{0}".format(LOGIN_USER)
    sudoers.write_text("{0} ALL=(ALL:ALL) NOPASSWD: ALL\n".format(LOGIN_USER))
    sudoers.chmod(0o440)
    (root / "etc/ssh/sshd_config.d/testfleet.conf").write_text(SSHD_DROPIN)


def build(path, log=sys.stderr):
    """Build the rootfs at *path* unless a finished one is already there; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_ready(path):
            return path
        tmp = path.with_name(path.name + ".building")
        shutil.rmtree(tmp, ignore_errors=True)
        if path.exists():
            shutil.rmtree(path)
        started = time.monotonic()
        argv = ["mmdebstrap", "--quiet", "--variant=apt", "--include=" + ",".join(PACKAGES),
                SUITE, str(tmp)] + [str(p) for p in apt_sources()]
        try:
            subprocess.run(argv, check=True, stdout=log, stderr=log)
            _finish(tmp)
            (tmp / READY_MARKER).write_text(path.name + "\n")
            tmp.rename(path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        print("built {0} in {1:.1f} s".format(path, time.monotonic() - started), file=log)
        return path


def ensure():
    """The ready rootfs path, building it on first use."""
    path = rootfs_path()
    return path if is_ready(path) else build(path)
