"""Login accounts inside a host's tree, written from the controller.

Editing ``passwd``/``group``/``shadow``/``gshadow`` directly (the format ``useradd`` writes) keeps
populating 50 hosts a matter of file appends instead of 50 x N chrooted processes, and works on a
tree whose sshd is not running yet.
"""

import os
import shutil
from collections import namedtuple
from pathlib import Path

Account = namedtuple("Account", "name uid gid home")

# The people whose caches the fixtures model; uids follow the login user (1000) as on a real box.
FIXTURE_USERS = (
    Account("alice", 1001, 1001, "/home/alice"),
    Account("bob", 1002, 1002, "/home/bob"),
    Account("carol", 1003, 1003, "/home/carol"),
)


def _names(path):
    with open(path) as handle:
        return {line.split(":", 1)[0] for line in handle if line.strip()}


def _append(path, line):
    with open(path, "a") as handle:
        handle.write(line + "\n")


def _copy_owned(src, dst, uid, gid):
    """Copy a skeleton tree, giving every entry to the new owner."""
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    for base, dirs, files in os.walk(dst):
        for name in dirs + files:
            os.lchown(os.path.join(base, name), uid, gid)
    os.chown(dst, uid, gid)


def add_account(root, account, shell="/bin/bash"):
    """Create *account* (user, private group, home from /etc/skel) in the tree at *root*.

    Idempotent: an existing user of that name is left as it is.
    """
    root = Path(root)
    etc = root / "etc"
    if account.name in _names(etc / "passwd"):
        return False
    _append(etc / "group", "{0.name}:x:{0.gid}:".format(account))
    _append(etc / "gshadow", "{0.name}:!::".format(account))
    _append(etc / "passwd", "{0.name}:x:{0.uid}:{0.gid}::{0.home}:{1}".format(account, shell))
    _append(etc / "shadow", "{0.name}:!:20000:0:99999:7:::".format(account))
    home = root / account.home.lstrip("/")
    home.parent.mkdir(parents=True, exist_ok=True)
    _copy_owned(etc / "skel", home, account.uid, account.gid)
    home.chmod(0o750)
    return True


def authorize_key(root, user_home, uid, gid, public_key):
    """Install *public_key* as the only authorized key of the user whose home is *user_home*."""
    ssh_dir = Path(root) / user_home.lstrip("/") / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(public_key)
    keys.chmod(0o600)
    for path in (ssh_dir, keys):
        os.chown(path, uid, gid)
