# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A conda package cache several users share: what its permissions must be, and the drift from that.

conda downloads into the first ``pkgs_dirs`` entry whose ``urls.txt`` opens for append
(``PackageCacheData.first_writable`` and ``gateways/disk/test.py`` ``file_path_is_writable``); a
cache without ``urls.txt`` it tries to create, and a cache it cannot write it only reads packages
from.  So a shared cache works for a group when:

- *writable* access: every directory belongs to the cache's group, is group-writable and setgid
  (new entries get the group), every file is group-readable and -writable, ``urls.txt`` is a
  regular file the group may append to; a default ACL on every directory makes new entries
  group-writable whatever a user's umask is.  Packages carry their own modes, and extraction
  applies them (directories ``0755``), so extracted packages drift after every install: the audit
  finds them and the fix gives the group its write bit back.
- *read_only* access: the same group and setgid, but nothing is group-writable, and ``urls.txt``
  exists and is not writable by the group, so conda reads packages from the cache and downloads into
  the next ``pkgs_dirs`` entry (a per-user cache) instead.  Every entry belongs to the declared owner.

Files owned by somebody who is neither the declared owner nor a member of the group (the only
ones who may put something there) are drift, fixed by giving them to the declared owner: nothing is
ever given to anybody else.  A setuid or setgid file is reported and never changed: given to root
it would run as root, made group-writable any member could rewrite what it runs as.  The walk opens every directory relative to its parent without
following symlinks, and leaves symlinks as they are.  Audit and fix are one walk: the fix applies
each entry's change on the handle the audit read it through.

Default ACLs are written as the kernel's ``system.posix_acl_default`` extended attribute with the
standard library (``os.setxattr``), so a host needs no ``acl`` package.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import grp
import os
import pwd
import stat
import struct

from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import Identity, act_as
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import (
    CREATE_FLAGS, DIR_FLAGS, READ_FLAGS, PathError, open_dir_nofollow)
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import CACHE_MARKERS, URLS_TXT

WRITABLE, READ_ONLY = "writable", "read_only"

# -- POSIX ACLs as the kernel stores them (linux/posix_acl_xattr.h) ---------------------------

DEFAULT_ACL = "system.posix_acl_default"
_ACL_VERSION = 2
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
_UNDEFINED_ID = 0xFFFFFFFF
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_TAG_NAMES = {USER_OBJ: "user:", USER: "user:%d", GROUP_OBJ: "group:", GROUP: "group:%d", MASK: "mask:", OTHER: "other:"}


class SharedCacheError(Exception):
    """The cache cannot be audited or fixed; the text names the path."""


def encode_acl(entries):
    """``[(tag, perm, id)]`` -> the xattr value (entries sorted by tag and id, as the kernel wants)."""
    ordered = sorted(entries, key=lambda e: (e[0], e[2]))
    return _HEADER.pack(_ACL_VERSION) + b"".join(_ENTRY.pack(tag, perm, qid) for tag, perm, qid in ordered)


def decode_acl(value):
    """The xattr value -> ``[(tag, perm, id)]``; SharedCacheError on a value that is no ACL."""
    if len(value) < _HEADER.size or (len(value) - _HEADER.size) % _ENTRY.size \
            or _HEADER.unpack_from(value)[0] != _ACL_VERSION:
        raise SharedCacheError("not a POSIX ACL (version 2) xattr value: %r" % (value[:16],))
    return sorted((_ENTRY.unpack_from(value, offset) for offset in range(_HEADER.size, len(value), _ENTRY.size)),
                  key=lambda e: (e[0], e[2]))


def acl_text(entries):
    """``user::rwx,group::rwx,other::r-x``: how ``getfacl`` writes it (ids numeric), or ``none``."""
    if not entries:
        return "none"
    words = []
    for tag, perm, qid in entries:
        name = _TAG_NAMES[tag] % qid if tag in (USER, GROUP) else _TAG_NAMES[tag]
        words.append("%s:%s" % (name, "".join(c if perm & b else "-" for c, b in (("r", 4), ("w", 2), ("x", 1)))))
    return ",".join(words)


def minimal_acl(mode):
    """The default ACL that gives every new entry the permission bits of ``mode``, umask or not."""
    return sorted([(USER_OBJ, (mode >> 6) & 7, _UNDEFINED_ID), (GROUP_OBJ, (mode >> 3) & 7, _UNDEFINED_ID),
                   (OTHER, mode & 7, _UNDEFINED_ID)], key=lambda e: (e[0], e[2]))


def read_default_acl(fd):
    """A directory's default ACL entries ([] for none); None when its filesystem has no ACLs."""
    try:
        return decode_acl(os.getxattr(fd, DEFAULT_ACL))
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            return []
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            return None
        raise


# -- conda's writability rule --------------------------------------------------------------------


def conda_writable(cache):
    """conda's ``PackageCacheData.is_writable``: True/False when ``urls.txt`` is a file (whether it
    opens for append), None when it is not (conda would then try to create the cache)."""
    urls = os.path.join(cache, URLS_TXT)
    if not os.path.isfile(urls):
        return None
    try:
        with open(urls, "a+"):
            return True
    except (IOError, OSError):
        return False


def conda_writable_for(cache, account):
    """:func:`conda_writable` with ``account``'s credentials; None when this run cannot take them."""
    identity = Identity.of(account.pw_uid, account.pw_gid)
    if identity.uid != os.geteuid() and os.geteuid() != 0:
        return None
    return act_as(identity, conda_writable, cache)


# -- the policy ----------------------------------------------------------------------------------


class Policy(object):
    """What the cache must look like: its group, declared owner, access and ACL wish."""

    def __init__(self, path, group, owner="root", access=WRITABLE, acl="auto"):
        if not os.path.isabs(path):
            raise SharedCacheError("%s: the cache must be an absolute path" % path)
        self.path = os.path.normpath(path)
        try:
            entry = grp.getgrnam(group)
        except KeyError:
            raise SharedCacheError("unknown group: %s (not in the group database)" % group)
        try:
            self.owner = pwd.getpwnam(owner)
        except KeyError:
            raise SharedCacheError("unknown owner: %s (not in the passwd database)" % owner)
        self.group, self.gid = entry.gr_name, entry.gr_gid
        self.access = access
        self.acl = acl
        self.members = sorted([a for a in pwd.getpwall() if a.pw_gid == self.gid or a.pw_name in entry.gr_mem],
                              key=lambda a: a.pw_uid)
        if access == READ_ONLY:
            self.owners = set([self.owner.pw_uid])
        else:
            self.owners = set([self.owner.pw_uid] + [a.pw_uid for a in self.members])

    def dir_mode(self, mode):
        """A directory's wanted mode: setgid, group rwx (r-x read-only), nobody else may write."""
        wanted = (mode | stat.S_ISGID | stat.S_IRGRP | stat.S_IXGRP) & ~stat.S_IWOTH
        return wanted | stat.S_IWGRP if self.access == WRITABLE else wanted & ~stat.S_IWGRP

    def file_mode(self, mode):
        """A file's wanted mode: group-readable (and -executable when its owner may run it),
        group-writable only in a writable cache, never world-writable."""
        wanted = (mode | stat.S_IRGRP | (stat.S_IXGRP if mode & stat.S_IXUSR else 0)) & ~stat.S_IWOTH
        return wanted | stat.S_IWGRP if self.access == WRITABLE else wanted & ~stat.S_IWGRP

    def top_mode(self):
        """The cache directory's mode when it is created."""
        return self.dir_mode(0o755)

    def marker_mode(self):
        return self.file_mode(0o644)


def _name(uid, names):
    if uid not in names:
        try:
            names[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            names[uid] = "uid %d" % uid
    return names[uid]


def _group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return "gid %d" % gid


class Change(object):
    """One entry's drift: what is wrong (``what``, ``why``) and the state that fixes it."""

    def __init__(self, path, kind, before, after, what, why, fixable=True):
        self.path = path
        self.kind = kind  # "directory", "file", or "missing"
        self.before = before  # dict(owner, group, mode, default_acl) or None (missing)
        self.after = after
        self.what = what
        self.why = why
        self.fixable = fixable

    def as_dict(self):
        return dict(path=self.path, kind=self.kind, what=list(self.what), why="; ".join(self.why),
                    before=self.before, after=self.after if self.fixable else None, fixable=self.fixable)

    def line(self, side):
        state = self.before if side == "before" else (self.after if self.fixable else self.before)
        if state is None:
            return "%s: absent" % self.path
        text = "%s: %s:%s %s" % (self.path, state["owner"], state["group"], state["mode"])
        if state.get("default_acl") is not None:
            text += " default_acl=%s" % state["default_acl"]
        return text


class Audit(object):
    """The walk's findings; with ``fix`` each change was also applied as it was found."""

    def __init__(self, policy):
        self.policy = policy
        self.changes = []
        self.acl_supported = None
        self.created = False
        self.failed = []  # "path: error" of fixes the kernel refused
        self.entries = 0

    @property
    def fixable(self):
        return [c for c in self.changes if c.fixable]

    def counts(self):
        found = {}
        for change in self.changes:
            for what in change.what:
                found[what] = found.get(what, 0) + 1
        return found

    def diff(self):
        lines = dict((side, "".join(c.line(side) + "\n" for c in self.changes)) for side in ("before", "after"))
        return dict(before_header=self.policy.path, after_header=self.policy.path, **lines)


class _Walker(object):
    """Audit (and, with ``fix``, repair) every directory and file under the cache."""

    def __init__(self, policy, fix):
        self.policy = policy
        self.fix = fix
        self.audit = Audit(policy)
        self.names = {}

    def state(self, st, acl):
        state = dict(owner=_name(st.st_uid, self.names), group=_group_name(st.st_gid), mode="%04o" % (st.st_mode & 0o7777))
        if acl is not None and stat.S_ISDIR(st.st_mode):
            state["default_acl"] = acl_text(acl)
        return state

    def judge(self, path, st, acl):
        """The entry's Change, or None when it is as the policy wants."""
        policy = self.policy
        is_dir = stat.S_ISDIR(st.st_mode)
        mode = st.st_mode & 0o7777
        want_mode = policy.dir_mode(mode) if is_dir else policy.file_mode(mode)
        want_uid = st.st_uid if st.st_uid in policy.owners else policy.owner.pw_uid
        want_acl = minimal_acl(want_mode) if is_dir and acl is not None else acl
        what, why = [], []
        if want_uid != st.st_uid:
            what.append("owner")
            why.append("owned by %s, %s" % (_name(st.st_uid, self.names), (
                "not the declared owner of a read-only cache" if policy.access == READ_ONLY
                else "who is not in group %s" % policy.group)))
        if st.st_gid != policy.gid:
            what.append("group")
            why.append("group %s, not %s" % (_group_name(st.st_gid), policy.group))
        if want_mode & stat.S_ISGID and not mode & stat.S_ISGID:
            what.append("setgid")
            why.append("not setgid: new entries would not get group %s" % policy.group)
        if (want_mode & ~stat.S_ISGID) != (mode & ~stat.S_ISGID):
            what.append("mode")
            why.append(_mode_why(mode, want_mode, policy, is_dir))
        if want_acl != acl:
            what.append("default_acl")
            why.append("default ACL %s, not %s: new entries would get the creator's umask" % (
                acl_text(acl), acl_text(want_acl)))
        if not what:
            return None
        if not is_dir and mode & (stat.S_ISUID | stat.S_ISGID):
            # Given to root it would run as root; group write would let any member rewrite it.
            return Change(path, "file", self.state(st, acl), None, what + ["setid"], why + [
                "a setuid/setgid file (conda packages carry none): never changed; remove it by hand"], fixable=False)
        after = dict(owner=_name(want_uid, self.names), group=policy.group, mode="%04o" % want_mode)
        if want_acl is not None and is_dir:
            after["default_acl"] = acl_text(want_acl)
        change = Change(path, "directory" if is_dir else "file", self.state(st, acl), after, what, why)
        change.targets = (want_uid, want_mode, want_acl)
        return change

    def visit(self, fd, path, st):
        """Judge the entry open at ``fd`` (``st`` its fstat); fix it when asked."""
        acl = None
        if stat.S_ISDIR(st.st_mode) and self.policy.acl != "never":
            acl = read_default_acl(fd)
            if self.audit.acl_supported is None:
                self.audit.acl_supported = acl is not None
        self.audit.entries += 1
        change = self.judge(path, st, acl)
        if change is None:
            return
        self.audit.changes.append(change)
        if self.fix and change.fixable:
            try:
                self.apply(fd, st, acl, change.targets)
            except OSError as exc:
                self.audit.failed.append("%s: %s" % (path, exc.strerror or exc))

    def apply(self, fd, st, acl, targets):
        uid, mode, want_acl = targets
        # chown first: it clears setgid on a file, and the mode is set last.
        if uid != st.st_uid or st.st_gid != self.policy.gid:
            os.fchown(fd, uid if uid != st.st_uid else -1, self.policy.gid)
        if mode != st.st_mode & 0o7777 or uid != st.st_uid:
            os.fchmod(fd, mode)
        if want_acl != acl:
            os.setxattr(fd, DEFAULT_ACL, encode_acl(want_acl))

    def walk(self, fd, path):
        """Every entry below the directory open at ``fd``; symlinks and special files are left alone."""
        for entry in sorted(os.listdir(fd)):
            child_path = os.path.join(path, entry)
            st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                flags = DIR_FLAGS
            elif stat.S_ISREG(st.st_mode):
                flags = READ_FLAGS | os.O_NONBLOCK
            else:
                continue
            try:
                child = os.open(entry, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    continue  # replaced by a symlink or removed since the listing: not ours to follow
                raise
            try:
                now = os.fstat(child)
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                    continue
                self.visit(child, child_path, now)
                if stat.S_ISDIR(now.st_mode):
                    self.walk(child, child_path)
            finally:
                os.close(child)

    def markers(self, fd):
        """``urls.txt`` (and ``urls``) as conda creates them: regular files, never symlinks."""
        for marker in CACHE_MARKERS:
            path = os.path.join(self.policy.path, marker)
            try:
                st = os.stat(marker, dir_fd=fd, follow_symlinks=False)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                self.missing_marker(fd, marker, path)
                continue
            if not stat.S_ISREG(st.st_mode):
                kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                self.audit.changes.append(Change(
                    path, "file", self.state(st, None), None, ["marker"],
                    ["%s is %s: conda would follow or refuse it; remove it by hand" % (marker, kind)], fixable=False))

    def missing_marker(self, fd, marker, path):
        policy = self.policy
        why = ("conda would try to create it and, for a member, could then download here" if policy.access == READ_ONLY
               else "conda would skip the cache for writing, and conda clean would skip it")
        after = dict(owner=policy.owner.pw_name, group=policy.group, mode="%04o" % policy.marker_mode())
        self.audit.changes.append(Change(path, "missing", None, after, ["marker"], ["%s is missing: %s" % (marker, why)]))
        if self.fix:
            made = os.open(marker, CREATE_FLAGS, 0o600, dir_fd=fd)
            try:
                os.fchown(made, policy.owner.pw_uid, policy.gid)
                os.fchmod(made, policy.marker_mode())
            finally:
                os.close(made)


def _mode_why(mode, want, policy, is_dir):
    wrong = []
    if want & stat.S_IWGRP and not mode & stat.S_IWGRP:
        wrong.append("not group-writable")
    if mode & stat.S_IWGRP and not want & stat.S_IWGRP:
        wrong.append("group-writable in a read-only cache")
    if not mode & stat.S_IRGRP:
        wrong.append("not group-readable")
    if want & stat.S_IXGRP and not mode & stat.S_IXGRP:
        wrong.append("group may not %s" % ("enter it" if is_dir else "run it"))
    if mode & stat.S_IWOTH:
        wrong.append("world-writable")
    return "mode %04o is %s (wanted %04o for group %s)" % (mode, ", ".join(wrong) or "not as wanted", want, policy.group)


def run(policy, fix):
    """Audit the cache (creating it when ``fix`` and it is missing); with ``fix``, repair what drifted.

    Raises SharedCacheError when the path leads through a symlink, its parent is missing, or the
    ACLs were required on a filesystem without them.
    """
    walker = _Walker(policy, fix)
    audit = walker.audit
    if not os.path.lexists(policy.path):
        _plan_creation(walker)
        if not fix:
            for marker in CACHE_MARKERS:
                walker.missing_marker(None, marker, os.path.join(policy.path, marker))
            return audit
        _create(policy, audit.acl_supported)
    try:
        top = open_dir_nofollow(policy.path)
    except PathError as exc:
        raise SharedCacheError(str(exc))
    try:
        walker.visit(top, policy.path, os.fstat(top))
        if policy.acl == "required" and audit.acl_supported is False:
            raise SharedCacheError("%s: its filesystem does not support POSIX ACLs (acl: required)" % policy.path)
        walker.markers(top)
        walker.walk(top, policy.path)
    finally:
        os.close(top)
    return audit


def _plan_creation(walker):
    """The missing cache's Change; whether its filesystem takes ACLs is asked of its parent."""
    policy, audit = walker.policy, walker.audit
    parent = os.path.dirname(policy.path)
    if not os.path.isdir(parent):
        raise SharedCacheError("%s: its parent directory does not exist" % policy.path)
    try:
        fd = open_dir_nofollow(parent)
    except (OSError, PathError) as exc:
        raise SharedCacheError("%s: cannot create it in %s: %s" % (policy.path, parent, exc))
    try:
        audit.acl_supported = None if policy.acl == "never" else read_default_acl(fd) is not None
    finally:
        os.close(fd)
    if policy.acl == "required" and audit.acl_supported is False:
        raise SharedCacheError("%s: its filesystem does not support POSIX ACLs (acl: required)" % policy.path)
    after = dict(owner=policy.owner.pw_name, group=policy.group, mode="%04o" % policy.top_mode())
    if audit.acl_supported:
        after["default_acl"] = acl_text(minimal_acl(policy.top_mode()))
    audit.changes.append(Change(policy.path, "missing", None, after, ["missing"], ["the cache does not exist"]))
    audit.created = True


def _create(policy, acl):
    os.mkdir(policy.path, 0o700)
    fd = open_dir_nofollow(policy.path)
    try:
        os.fchown(fd, policy.owner.pw_uid, policy.gid)
        os.fchmod(fd, policy.top_mode())
        if acl:
            os.setxattr(fd, DEFAULT_ACL, encode_acl(minimal_acl(policy.top_mode())))
    finally:
        os.close(fd)


def writability(policy):
    """``{member: conda_writable}`` as each member of the group (and the owner) would see the cache."""
    accounts = dict((a.pw_name, a) for a in policy.members)
    accounts[policy.owner.pw_name] = policy.owner
    return dict((name, conda_writable_for(policy.path, account)) for name, account in sorted(accounts.items()))
