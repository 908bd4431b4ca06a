# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declare ``pkgs_dirs`` for one config scope and move the first cache's content to its new home.

Plan, then act.  :func:`build_plan` reads everything (config files, environments, the old cache)
and decides: the new ``.condarc`` text, which cache directories to create, and the move (rename on
one filesystem, verified copy across two).  It refuses what would break or fill something before
anything is touched.  :func:`apply` executes that plan in an order that keeps every failure
recoverable: dirs, then the move into the new cache (staged, verified), then the config switch,
then the re-resolved config is checked, and only then is the old cache removed.  Before the
switch a failure undoes the move and leaves config and old cache as they were; after it, the new
cache is complete and the message says what is left of the old one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_config
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_config_edit import (
    KEY, EditError, expand_all, judge, read_items, resolve_with, set_items, wanted_items)
from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import CopyError, TreeCopier
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, filesystem, walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import write_atomic
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import inside
from ansible_collections.pkgcache.fleet.plugins.module_utils._removal import CacheDir, RemovalError
from ansible_collections.pkgcache.fleet.plugins.module_utils._procs import process_using
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import READ_TEXT, human_bytes, is_clean
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import (
    CACHE_MARKERS, URLS_TXT, Installation, is_prefix, strip_tarball_suffix, TARBALL_SUFFIXES)

STAGING = ".pkgcache-relocate"  # inside the new cache: a copy in progress, never a package
ASIDE = ".pkgcache-old"  # suffix of the old cache while it is being removed


class RelocateError(Exception):
    """Refused or failed; the message says what, where and (for space) with the numbers."""


class Request(object):
    """What the task asked for, with names already turned into users, uids and absolute paths.

    ``viewer`` is the account whose view of the configuration is resolved (the scope's user, or
    root for the system scope); ``users`` are every account whose environments must keep working.
    """

    def __init__(self, root, condarc, viewer, users, pkgs_dirs, state="present", migrate=False,
                 link_old=False, extracted="move", uid=None, gid=None, mode=None, env=None):
        self.root = os.path.normpath(root)
        self.condarc = os.path.normpath(condarc)
        self.viewer = viewer
        self.users = users
        self.pkgs_dirs = list(pkgs_dirs)
        self.state = state
        self.migrate = migrate
        self.link_old = link_old
        self.extracted = extracted
        self.uid, self.gid, self.mode = uid, gid, mode
        self.env = dict(env or {})
        # conda expands $HOME in config values from the viewer's environment.
        self.env.setdefault("HOME", viewer.home)
        relative = [p for p in self.pkgs_dirs if not conda_config.expands_absolute(p, viewer.home, self.env)]
        if relative and state == "present":
            raise RelocateError("pkgs_dirs entries must be absolute paths, or start with ~ or a $VARIABLE that "
                                "expands to one for %s; refusing %s"
                                % (viewer.name, ", ".join(repr(p) for p in relative)))


def condarc_path(scope, root, home=None, explicit=None):
    """The file a scope writes: ``<root>/.condarc``, ``~user/.condarc`` or the explicit path."""
    if explicit:
        return os.path.normpath(explicit)
    if scope == "system":
        return os.path.join(root, ".condarc")
    if scope == "user" and home:
        return os.path.join(home, ".condarc")
    raise RelocateError("scope %r needs %s" % (scope, "a user" if scope == "user" else "a condarc path"))


# -- the move --------------------------------------------------------------------------------


def available_bytes(path):
    """Space an unprivileged writer may still use on the filesystem holding ``path``."""
    return filesystem(_existing_ancestor(path))["available_bytes"]


def _existing_ancestor(path):
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


class MovePlan(object):
    """Moving the old first cache's content into the new first cache.

    ``method`` is ``rename`` (one filesystem: nothing is copied, nothing is freed) or ``copy``.
    ``usage`` covers the whole old cache and ``copy_usage`` what is copied; the old filesystem
    gains ``usage.reclaimable`` (inodes with no link left outside the cache), not the cache's size.
    """

    def __init__(self, source, dest, method, names, dropped, softlinked, link_old, usage, copy_usage):
        self.source = source
        self.dest = dest
        self.method = method
        self.names = names  # top-level entries carried over (markers excluded)
        self.dropped = dropped  # extracted dirs left behind: the tarball is carried, conda re-extracts
        self.softlinked = softlinked  # {env prefix: [dists]} linked by symlinks into the old cache
        self.link_old = link_old
        self.usage = usage
        self.copy_usage = copy_usage

    @property
    def old_fs_gain(self):
        return self.usage.reclaimable if self.method == "copy" else 0

    @property
    def new_fs_needs(self):
        return self.copy_usage.on_disk if self.method == "copy" else 0

    def as_dict(self):
        return {
            "source": self.source,
            "dest": self.dest,
            "method": self.method,
            "entries": len(self.names),
            "dropped": sorted(self.dropped),
            "softlinked_envs": dict((k, sorted(v)) for k, v in sorted(self.softlinked.items())),
            "link_old": self.link_old,
            "cache_disk_bytes": self.usage.on_disk,
            "copy_bytes": self.new_fs_needs,
            "old_fs_gain_bytes": self.old_fs_gain,
            "held_by_environments_bytes": self.usage.on_disk - self.usage.reclaimable,
        }

    def describe(self):
        lines = ["%s %s -> %s (%d entries)" % (self.method, self.source, self.dest, len(self.names))]
        if self.method == "copy":
            lines.append("needs %s on the new filesystem; the old one gains %s (%s stay hard-linked by environments)" % (
                human_bytes(self.new_fs_needs), human_bytes(self.old_fs_gain),
                human_bytes(self.usage.on_disk - self.usage.reclaimable)))
        else:
            lines.append("same filesystem: no bytes are copied or freed")
        lines.extend("drop extracted %s (tarball kept)" % name for name in sorted(self.dropped))
        lines.append(("symlink %s -> %s" % (self.source, self.dest)) if self.link_old else ("remove %s" % self.source))
        return "\n".join(lines) + "\n"


def _softlinked(environments, source_real):
    """Environments whose symlinks point into the old cache, with the dists they link."""
    found = {}
    for env in environments:
        for record in env.records:
            epd = record.extracted_package_dir
            if record.link_type == "softlink" and epd and inside(
                    os.path.join(os.path.realpath(os.path.dirname(epd)), os.path.basename(epd)), source_real):
                found.setdefault(env.prefix, []).append(os.path.basename(epd))
    return found


def check_destination(dest, environments, roots):
    """Refuse a cache inside an environment, or inside an installation next to its own files."""
    real = os.path.realpath(dest)
    for env in environments:
        prefix = os.path.realpath(env.prefix)
        if prefix in roots or not inside(real, prefix):
            continue
        raise RelocateError("%s is inside the environment %s" % (dest, env.prefix))
    for root in roots:
        if real == root:
            raise RelocateError("%s is the installation %s itself" % (dest, root))
        if inside(real, root):
            top = os.path.join(root, os.path.relpath(real, root).split("/")[0])
            if os.path.lexists(top) and not any(os.path.isfile(os.path.join(top, m)) for m in CACHE_MARKERS):
                raise RelocateError("%s would mix a cache into %s's own %s" % (dest, root, top))


def plan_move(source, dest, environments, extracted="move", link_old=False):
    """The move from ``source`` to ``dest``, or None when there is nothing to move."""
    if not os.path.lexists(source) or os.path.realpath(source) == os.path.realpath(dest):
        return None
    if os.path.islink(source):
        raise RelocateError("%s is a symlink to %s: move that cache by hand" % (source, os.path.realpath(source)))
    source_real, dest_real = os.path.realpath(source), os.path.realpath(dest)
    if inside(dest_real, source_real) or inside(source_real, dest_real):
        raise RelocateError("%s and %s are inside one another" % (dest, source))
    if os.path.isdir(dest):
        foreign = sorted(n for n in os.listdir(dest) if n not in CACHE_MARKERS)
        if foreign:
            raise RelocateError("%s already holds %d entries (%s): merging caches is not supported" % (
                dest, len(foreign), ", ".join(foreign[:5])))
    same_fs = os.stat(source_real).st_dev == os.stat(_existing_ancestor(dest_real)).st_dev
    softlinked = _softlinked(environments, source_real)
    if softlinked and not link_old:
        raise RelocateError("soft-linked environments point into %s (%s): set link_old to keep them working" % (
            source, ", ".join(sorted(softlinked))))
    names = sorted(n for n in os.listdir(source_real) if n not in CACHE_MARKERS and n != STAGING)
    dropped = []
    if extracted == "drop" and not same_fs:
        dropped = _droppable(source_real, names, set(d for dists in softlinked.values() for d in dists))
    usage, copy_usage = DiskUsage(), DiskUsage()
    usage.add(os.lstat(source_real))
    for name in os.listdir(source_real):
        if name == STAGING:
            continue
        part = walk(os.path.join(source_real, name), DiskUsage())
        usage.update(part)
        if name not in dropped:
            copy_usage.update(part)
    method = "rename" if same_fs else "copy"
    carried = [n for n in names if n not in dropped]
    return MovePlan(source, dest, method, carried, dropped, softlinked, link_old, usage, copy_usage)


def _droppable(source, names, softlinked_dists):
    """Extracted dirs conda can re-create from a tarball that moves with the cache."""
    tarballs = set(strip_tarball_suffix(n) for n in names if n.endswith(TARBALL_SUFFIXES))
    return [n for n in names if n in tarballs and n not in softlinked_dists
            and os.path.isfile(os.path.join(source, n, "info", "index.json"))]


def check_room(move):
    """Refuse a copy the new filesystem cannot hold, with the numbers."""
    if move is None or move.method != "copy":
        return
    free = available_bytes(move.dest)
    if move.new_fs_needs > free:
        raise RelocateError("%s: the copy needs %d bytes (%s), %d (%s) are available on %s" % (
            move.dest, move.new_fs_needs, human_bytes(move.new_fs_needs), free, human_bytes(free),
            filesystem(_existing_ancestor(move.dest))["mount"]))


# -- the whole plan --------------------------------------------------------------------------


class Plan(object):
    """Everything one task run will do, computed before anything is done."""

    def __init__(self, request, before_text, after_text, before, after, create, move, warnings):
        self.request = request
        self.before_text = before_text  # None: the file does not exist
        self.after_text = after_text
        self.before = before
        self.after = after
        self.create = create
        self.move = move
        self.warnings = warnings

    @property
    def config_changes(self):
        return self.before_text != self.after_text

    @property
    def changed(self):
        return bool(self.config_changes or self.create or self.move)

    def as_dict(self):
        return {
            "condarc": self.request.condarc,
            "config_changed": self.config_changes,
            "pkgs_dirs_before": list(self.before.config.pkgs_dirs),
            "pkgs_dirs": list(self.after.config.pkgs_dirs),
            "sources": list(self.after.config.sources),
            "created": list(self.create),
            "migration": self.move.as_dict() if self.move else None,
        }

    def diff(self):
        diffs = [{"before_header": self.request.condarc, "after_header": self.request.condarc,
                  "before": self.before_text or "", "after": self.after_text or ""}]
        steps = "".join("create cache %s\n" % d for d in self.create) + (self.move.describe() if self.move else "")
        if steps:
            diffs.append({"before_header": "move plan", "after_header": "move plan", "before": "", "after": steps})
        return diffs


def _read(path):
    try:
        with open(path, **READ_TEXT) as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise RelocateError("cannot read %s: %s" % (path, exc))
    if not is_clean(text):
        raise RelocateError("%s has bytes that are not UTF-8 (conda itself refuses it); not edited" % path)
    return text


def _check_symlink(path):
    """A config that is a symlink to someone else's file is neither read nor replaced: as root,
    following a user's ``~/.condarc`` link could show or overwrite any file on the host."""
    if os.path.islink(path) and os.path.exists(path) and os.lstat(path).st_uid != os.stat(path).st_uid:
        raise RelocateError("%s is a symlink to %s, which its owner does not own" % (path, os.path.realpath(path)))


def _check_path_links(path):
    """Directories root creates (and may give to a user) are never reached through a symlink
    someone else could have planted: only root-owned links are followed on the way.  (Without
    root nothing is gained by a planted link.)"""
    if os.geteuid() != 0:
        return
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = os.path.join(current, part)
        if os.path.islink(current) and os.lstat(current).st_uid != 0:
            raise RelocateError("refusing to create %s through %s, a symlink owned by uid %d" % (
                path, current, os.lstat(current).st_uid))


def build_plan(request):
    """Read, decide, refuse: the plan :func:`apply` executes (and check mode returns)."""
    if not is_prefix(request.root):
        raise RelocateError("%s is not a conda installation (no conda-meta/history)" % request.root)
    _check_symlink(request.condarc)
    before_text = _read(request.condarc)
    try:
        current = read_items(before_text or "", KEY, request.condarc)
        items = wanted_items(current, request.pkgs_dirs, request.state)
        after_text = before_text if items == current else set_items(before_text or "", items, KEY, request.condarc)
        before = resolve_with(request, before_text)
        after = resolve_with(request, after_text)
    except EditError as exc:
        raise RelocateError(str(exc))
    errors, warnings = judge(request, items, after)
    if errors:
        raise RelocateError("; ".join(errors))
    warnings = after.config.warnings + warnings
    host = Host(request.users, [request.root], request.env).resolve_configs().load_environments()
    roots = set(os.path.realpath(i.root) for i in host.installations) | set([os.path.realpath(request.root)])
    wanted = expand_all(request, items)
    create = [d for d in wanted if not os.path.lexists(d)] if request.state == "present" else []
    move = None
    if request.migrate and before.config.pkgs_dirs and after.config.pkgs_dirs:
        source, dest = before.config.pkgs_dirs[0], after.config.pkgs_dirs[0]
        move = plan_move(source, dest, host.environments, request.extracted, request.link_old)
        if move is not None:
            if request.extracted == "drop" and move.method == "rename":
                warnings.append("extracted=drop does nothing on one filesystem: the rename moves every package for free")
            check_destination(dest, host.environments, roots)
            _refuse_busy(request.root, source)
            check_room(move)
    for path in create:
        check_destination(path, host.environments, roots)
        _check_path_links(path)
    return Plan(request, before_text, after_text, before, after, create, move, warnings)


def _refuse_busy(root, source):
    for path in (root, source):
        user = process_using(os.path.realpath(path))
        if user is not None:
            raise RelocateError("%s is in use by process %s: not moving its cache now" % (path, user))


# -- doing it --------------------------------------------------------------------------------


def make_cache_dir(path, uid=None, gid=None, mode=None):
    """A cache conda writes to and ``conda clean`` does not skip: the dir plus ``urls.txt``/``urls``."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent)
    os.mkdir(path)
    if mode is not None:
        os.chmod(path, mode)
    for marker in CACHE_MARKERS:
        os.close(os.open(os.path.join(path, marker), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    if uid is not None or gid is not None:
        for name in [path] + [os.path.join(path, m) for m in CACHE_MARKERS]:
            os.chown(name, -1 if uid is None else uid, -1 if gid is None else gid)


class Mover(object):
    """Carries out a MovePlan in two halves around the config switch.

    :meth:`stage` puts the content in the new cache (undone by :meth:`rollback`); :meth:`finish`
    takes the old cache away.  Both caches stay locked against other runs of this collection
    from the first half to the end.
    """

    def __init__(self, move):
        self.move = move
        self.placed = []
        self.urls_before = None
        self.old = None
        self.new = None

    def stage(self):
        move = self.move
        try:
            self.old = CacheDir(move.source)
            self.new = CacheDir(move.dest)
            self.urls_before = _read(os.path.join(move.dest, URLS_TXT))
            if move.method == "rename":
                for name in move.names:
                    os.rename(os.path.join(move.source, name), os.path.join(move.dest, name))
                    self.placed.append(name)
            else:
                self._copy_in()
            self._merge_urls()
        except (OSError, IOError, RelocateError, RemovalError, CopyError) as exc:
            self.rollback()
            raise RelocateError("moving %s to %s failed; config and old cache untouched, partial copy "
                                "removed: %s" % (move.source, move.dest, _describe(exc)))

    def _copy_in(self):
        """Copy into a staging dir, verify, then rename each entry into place (same filesystem)."""
        move = self.move
        staging = os.path.join(move.dest, STAGING)
        os.mkdir(staging, 0o700)
        copier = TreeCopier(hashed=lambda path: path.endswith(TARBALL_SUFFIXES))
        for name in move.names:
            copier.copy(os.path.join(move.source, name), os.path.join(staging, name))
        copier.verify()
        for name in move.names:
            os.rename(os.path.join(staging, name), os.path.join(move.dest, name))
            self.placed.append(name)
        os.rmdir(staging)

    def _merge_urls(self):
        """The new ``urls.txt``: the old cache's download log, then lines only the new one had."""
        old = (_read(os.path.join(self.move.source, URLS_TXT)) or "").splitlines(True)
        extra = [line for line in (self.urls_before or "").splitlines(True) if line not in old]
        if old:
            write_atomic(os.path.join(self.move.dest, URLS_TXT), "".join(old + extra))

    def rollback(self):
        """Undo :meth:`stage`: the old cache as it was, the new one without our entries."""
        move = self.move
        try:
            if self.new is not None:
                if move.method == "rename":
                    for name in reversed(self.placed):
                        os.rename(os.path.join(move.dest, name), os.path.join(move.source, name))
                else:
                    for name in self.placed + [STAGING]:
                        self.new.remove(name)
                if self.urls_before is not None:
                    write_atomic(os.path.join(move.dest, URLS_TXT), self.urls_before)
        finally:
            self.close()

    def finish(self):
        """After the switch: the old cache goes (through the safe removal path), or becomes a
        symlink to the new one.  It is first renamed aside, so soft-linked environments see the
        old path vanish and come back as the link in one step, never a half-removed cache."""
        move = self.move
        aside = "%s%s.%d" % (move.source.rstrip("/"), ASIDE, os.getpid())
        try:
            os.rename(move.source, aside)
            if move.link_old:
                os.symlink(move.dest, move.source)
            for name in sorted(os.listdir(self.old.fd)):
                self.old.remove(name)
            self.close()
            os.rmdir(aside)
        except (OSError, IOError, RemovalError) as exc:
            self.close()
            raise RelocateError("%s now holds the cache and the config points at it, but removing the old "
                                "copy failed (%s); what is left of it is in %s" % (move.dest, exc, aside))

    def close(self):
        for cache in (self.old, self.new):
            if cache is not None:
                cache.close()
        self.old = self.new = None


def _describe(exc):
    """``path: No space left on device`` rather than a tuple repr."""
    if isinstance(exc, EnvironmentError) and exc.strerror:
        return "%s: %s" % (exc.filename, exc.strerror) if exc.filename else exc.strerror
    return str(exc)


def _restore_config(path, text):
    if text is not None:
        write_atomic(path, text)
    elif os.path.lexists(path):
        os.unlink(path)


def apply(plan):
    """Execute ``plan``; returns the effective config conda now resolves."""
    request = plan.request
    for path in plan.create:
        make_cache_dir(path, request.uid, request.gid, request.mode)
    mover = Mover(plan.move) if plan.move else None
    if mover:
        mover.stage()
    try:
        if plan.config_changes:
            if plan.after_text is None:
                os.unlink(request.condarc)
            else:
                write_atomic(request.condarc, plan.after_text, request.viewer.uid, request.viewer.gid)
        viewer = request.viewer
        now = conda_config.resolve(request.root, viewer.home, request.env, Installation(request.root).writable_by(viewer))
        if now.pkgs_dirs != plan.after.config.pkgs_dirs:
            raise RelocateError("after writing %s conda resolves pkgs_dirs to %s, expected %s" % (
                request.condarc, now.pkgs_dirs, plan.after.config.pkgs_dirs))
    except (OSError, IOError, RelocateError) as exc:
        if plan.config_changes:
            _restore_config(request.condarc, plan.before_text)
        if mover:
            mover.rollback()
        raise RelocateError("config switch failed, %s restored%s: %s" % (
            request.condarc, " and the move undone" if mover else "", _describe(exc)))
    if mover:
        mover.finish()
    return now
