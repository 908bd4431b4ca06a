# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ground floor: on whose authority a directory may be emptied by a run as root.

A root run reads what users wrote (homes, configs, symlinks).  A directory is acted on with the
credentials of its owner, and only when the owner is one of those who *named* it (or root named
it through a file only root can write) and nobody else can redirect the path that leads to it.
The kernel then enforces the rest: a process running as the owner cannot remove what the owner
could not.  SECURITY.md has the threat model.

``namers``: uids behind the names of a directory (a config file, a default location in a home,
the operator's options, which count as root).  ``controllers``: uids that can change where the
path leads (owners of every symlink and directory on the way, ``ANYONE`` for a directory others
may write without the sticky bit).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import stat

from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import inside
from ansible_collections.pkgcache.fleet.plugins.module_utils._privdrop import groups_of, run_as

ROOT = 0
ANYONE = -1
_MAX_LINKS = 40


class Identity(object):
    """Credentials a removal runs with; ``uid == 0`` is the run's own."""

    __slots__ = ("uid", "gid", "groups")

    def __init__(self, uid, gid, groups):
        self.uid = uid
        self.gid = gid
        self.groups = list(groups)

    @classmethod
    def of(cls, uid, fallback_gid):
        """The passwd account's gid and groups; a uid with no account gets the directory's gid."""
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return cls(uid, fallback_gid, [fallback_gid])
        return cls(uid, entry.pw_gid, groups_of(entry.pw_name, entry.pw_gid))

    @property
    def name(self):
        return names_of([self.uid])


def act_as(identity, func, *args):
    """``func(*args)`` with ``identity``'s credentials: here when they are this process's own (or
    ``identity`` is None), else in a child dropped to them (``_privdrop.run_as``)."""
    if identity is None or identity.uid == os.geteuid():
        return func(*args)
    return run_as(identity.uid, identity.gid, identity.groups, func, *args)


def authority(path, routes):
    """``(identity, (st_dev, st_ino, st_uid), None)`` for the first of the ``(path, namer uid)``
    routes naming the directory ``path`` that :func:`decide` accepts, else ``(None, None, why)``."""
    reasons = []
    for named, namer in routes:
        try:
            real, controllers = path_controllers(named)
            st = os.stat(real)
        except OSError as exc:
            reasons.append("cannot tell who may act on %s: %s" % (named, exc.strerror or exc))
            continue
        uid, why = decide(st.st_uid, [namer], controllers)
        if why is None:
            return Identity.of(uid, st.st_gid), (st.st_dev, st.st_ino, st.st_uid), None
        reasons.append(why if named == path else "%s (named as %s)" % (why, named))
    return None, None, "; ".join(reasons) or "nobody named it"


def _writable_by_others(st):
    """A directory whose entries someone besides its owner may replace (no sticky bit)."""
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)) and not st.st_mode & stat.S_ISVTX


def path_controllers(path):
    """``(real path, uids that can change where ``path`` leads)``, resolving links by hand.

    Every directory entered and every symlink followed adds its owner; a directory others may
    write without the sticky bit adds ``ANYONE``.  The final directory's owner is added too.
    Raises OSError when a component is missing or unreadable.
    """
    controllers = set()
    pending = [p for p in os.path.normpath(path).split("/") if p]
    current = "/"
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            current = os.path.dirname(current)
            continue
        parent = os.lstat(current)
        controllers.add(parent.st_uid)
        if _writable_by_others(parent):
            controllers.add(ANYONE)
        candidate = os.path.join(current, part)
        st = os.lstat(candidate)
        controllers.add(st.st_uid)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise OSError(40, "too many levels of symbolic links", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = "/"
            pending = [p for p in target.split("/") if p and p != "."] + pending
            continue
        current = candidate
    return current, controllers


def namer_of(path, homes):
    """The uid whose word a file (a config, a prefix) is: the user whose home holds it, else its owner (and
    a symlink's owner, when it is one); root only when root owns every part."""
    for uid, home in homes:
        if home and home != "/" and inside(os.path.normpath(path), os.path.normpath(home)):
            return uid
    try:
        _real, controllers = path_controllers(path)
    except OSError:
        return ANYONE
    others = controllers - set([ROOT])
    return min(others) if others else ROOT


def decide(owner, namers, controllers):
    """``(uid to act as, None)`` or ``(None, why not)``: who may remove inside a directory owned by
    ``owner``, named by ``namers`` and reached through a path ``controllers`` can change."""
    namers = set(namers)
    strangers = controllers - set([ROOT, owner])
    if strangers:
        return None, "reached through a path %s can change (%s)" % (
            "anyone" if ANYONE in strangers else "uid %s" % ", ".join(str(u) for u in sorted(strangers)),
            names_of(namers))
    if owner == ROOT:
        if ROOT in namers:
            return ROOT, None
        return None, "owned by root but named only by %s" % names_of(namers)
    if owner in namers or ROOT in namers:
        return owner, None
    return None, "owned by uid %d, named only by %s" % (owner, names_of(namers))


def names_of(uids):
    """The users behind ``uids`` for a message (``ANYONE`` as "an unknown writer")."""
    words = []
    for uid in sorted(uids):
        if uid == ANYONE:
            words.append("an unknown writer")
            continue
        try:
            words.append(pwd.getpwuid(uid).pw_name)
        except KeyError:
            words.append("uid %d" % uid)
    return ", ".join(words) or "nobody"
