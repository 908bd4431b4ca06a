# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The move of one package cache to a new home, and the journal that makes it recoverable.

:func:`plan_move` decides (rename on one filesystem, verified copy across two) and refuses what
would break or fill something; a :class:`Mover` executes it, writing each step to the move's
:class:`Journal` first, so a run killed anywhere is rolled back or finished by the rerun.
:func:`carry_out` runs a whole relocation (recovery, move, config switch, removal of the old copy)
for any cache a :class:`CacheKind` describes: conda's ``pkgs_dirs`` (``conda_relocate``) and
pip's and uv's caches (``pip_relocate``) share it.  Those modules decide what to move and which
config text names the new home.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import hashlib
import io
import json
import os
import tempfile

from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import ANYONE, ROOT, Identity, act_as, namer_of
from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import CopyError, TreeCopier
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, filesystem, walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import sweep_dead_temps, sync_filesystem, write_atomic
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import (
    CLOEXEC, READ_FLAGS, inside, directory_problem, existing_ancestor, open_regular)
from ansible_collections.pkgcache.fleet.plugins.module_utils._privdrop import PrivDropError
from ansible_collections.pkgcache.fleet.plugins.module_utils._removal import CacheDir, RemovalError, rmtree_fd
from ansible_collections.pkgcache.fleet.plugins.module_utils import options
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import READ_TEXT, Results, human_bytes, is_clean
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import (
    CACHE_MARKERS, URLS_TXT, strip_tarball_suffix, TARBALL_SUFFIXES)

STAGING = ".pkgcache-relocate"  # inside the new cache: the move's journal and staged copy, never a package
JOURNAL = "journal.json"  # in STAGING: the move's identity and the step it reached
STAGED = "data"  # in STAGING: the copy in progress (a move across filesystems)
STEPS = ("copy", "place", "switch", "remove")
ASIDE = ".pkgcache-old"  # suffix of the old cache while it is being removed
NEW = ".pkgcache-new"  # suffix of a cache directory being made, beside its final name
CONFIG_TEMP = ".pkgcache-config."  # prefix of a config file being written, then our pid


class RelocateError(Exception):
    """Refused or failed; the message says what, where and (for space) with the numbers."""


class CacheKind(object):
    """What the mover must know of one tool's cache layout.

    ``markers``: files that make a directory this tool's cache; a new cache is made with them and
    they are not carried (the new cache has its own).  ``hashed(path)``: whether a copied file is
    verified by sha256 as well as by size.  ``download_log``: a file both caches may hold whose
    lines are merged (conda's ``urls.txt``), or None.
    """

    def __init__(self, name, markers=(), hashed=lambda path: True, download_log=None):
        self.name = name
        self.markers = markers
        self.hashed = hashed
        self.download_log = download_log


KINDS = dict((kind.name, kind) for kind in (
    CacheKind("conda", CACHE_MARKERS, lambda path: path.endswith(TARBALL_SUFFIXES), URLS_TXT),
    # pip's and uv's caches are content-addressed blobs with no marker of their own: every
    # file's bytes are checked.
    CacheKind("pip"),
    CacheKind("uv"),
))


# -- the move --------------------------------------------------------------------------------


def available_bytes(path):
    """Space an unprivileged writer may still use on the filesystem holding ``path``."""
    return filesystem(existing_ancestor(path))["available_bytes"]


class MovePlan(object):
    """Moving the old first cache's content into the new first cache.

    ``method`` is ``rename`` (one filesystem: nothing is copied, nothing is freed) or ``copy``.
    ``cache_disk`` is the whole old cache on disk, ``copy_disk`` what is copied; the old
    filesystem gains ``reclaimable`` (inodes with no link left outside the cache), not the cache's
    size.  Plain values, so the journal can carry the plan to a rerun (:meth:`record`).
    """

    def __init__(self, source, dest, method, names, dropped, softlinked, link_old, cache_disk, reclaimable,
                 copy_disk, kind="conda"):
        self.source = source
        self.dest = dest
        self.method = method
        self.names = names  # top-level entries carried over (markers excluded)
        self.dropped = dropped  # extracted dirs left behind: the tarball is carried, conda re-extracts
        self.softlinked = softlinked  # {env prefix: [dists]} linked by symlinks into the old cache
        self.link_old = link_old
        self.cache_disk = cache_disk
        self.reclaimable = reclaimable
        self.copy_disk = copy_disk
        self.kind = kind  # a KINDS name: the journal alone says how to finish the move

    def record(self):
        return dict((key, getattr(self, key)) for key in (
            "source", "dest", "method", "names", "dropped", "softlinked", "link_old", "cache_disk", "reclaimable",
            "copy_disk", "kind"))

    @classmethod
    def from_record(cls, record):
        return cls(**record)

    @property
    def old_fs_gain(self):
        return self.reclaimable if self.method == "copy" else 0

    @property
    def new_fs_needs(self):
        return self.copy_disk if self.method == "copy" else 0

    def as_dict(self):
        return {
            "source": self.source,
            "dest": self.dest,
            "method": self.method,
            "entries": len(self.names),
            "dropped": sorted(self.dropped),
            "softlinked_envs": dict((k, sorted(v)) for k, v in sorted(self.softlinked.items())),
            "link_old": self.link_old,
            "cache_disk_bytes": self.cache_disk,
            "copy_bytes": self.new_fs_needs,
            "old_fs_gain_bytes": self.old_fs_gain,
            "held_by_environments_bytes": self.cache_disk - self.reclaimable,
        }

    def describe(self):
        lines = ["%s %s -> %s (%d entries)" % (self.method, self.source, self.dest, len(self.names))]
        if self.method == "copy":
            lines.append("needs %s on the new filesystem; the old one gains %s (%s stay hard-linked by environments)" % (
                human_bytes(self.new_fs_needs), human_bytes(self.old_fs_gain),
                human_bytes(self.cache_disk - self.reclaimable)))
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


def plan_move(source, dest, environments, extracted="move", link_old=False, kind="conda"):
    """The move from ``source`` to ``dest``, or None when there is nothing to move.  Only conda's
    caches have ``environments`` and ``extracted`` packages."""
    markers = KINDS[kind].markers
    if not os.path.lexists(source) or os.path.realpath(source) == os.path.realpath(dest):
        return None
    if os.path.islink(source):
        raise RelocateError("%s is a symlink to %s: move that cache by hand" % (source, os.path.realpath(source)))
    source_real, dest_real = os.path.realpath(source), os.path.realpath(dest)
    if inside(dest_real, source_real) or inside(source_real, dest_real):
        raise RelocateError("%s and %s are inside one another" % (dest, source))
    if os.path.isdir(dest):
        # A staging dir is the journal's business (build_plan has judged it before we get here).
        foreign = sorted(n for n in os.listdir(dest) if n not in markers and n != STAGING)
        if foreign:
            raise RelocateError("%s already holds %d entries (%s): merging caches is not supported" % (
                dest, len(foreign), ", ".join(foreign[:5])))
    same_fs = os.stat(source_real).st_dev == os.stat(existing_ancestor(dest_real)).st_dev
    softlinked = _softlinked(environments, source_real)
    if softlinked and not link_old:
        raise RelocateError("soft-linked environments point into %s (%s): set link_old to keep them working" % (
            source, ", ".join(sorted(softlinked))))
    names = sorted(n for n in os.listdir(source_real) if n not in markers and n != STAGING)
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
    return MovePlan(source, dest, method, carried, dropped, softlinked, link_old, usage.on_disk, usage.reclaimable,
                    copy_usage.on_disk, kind)


def _droppable(source, names, softlinked_dists):
    """Extracted dirs conda can re-create from a tarball that moves with the cache."""
    tarballs = set(strip_tarball_suffix(n) for n in names if n.endswith(TARBALL_SUFFIXES))
    return [n for n in names if n in tarballs and n not in softlinked_dists
            and os.path.isfile(os.path.join(source, n, "info", "index.json"))]


def check_room(move, freed=0):
    """Refuse a copy the new filesystem cannot hold, with the numbers (``freed``: bytes there the
    run removes first, a killed run's partial copy)."""
    if move is None or move.method != "copy":
        return
    free = available_bytes(move.dest) + freed
    if move.new_fs_needs > free:
        raise RelocateError("%s: the copy needs %d bytes (%s), %d (%s) are available on %s" % (
            move.dest, move.new_fs_needs, human_bytes(move.new_fs_needs), free, human_bytes(free),
            filesystem(existing_ancestor(move.dest))["mount"]))


def check_writable(path, what, identity=None):
    """Refuse, before anything changes, a ``path`` that cannot be a directory ``identity`` (None:
    this process) creates entries in: a file on the way, a pseudo or read-only filesystem,
    permissions.  Check mode then fails as the real run would."""
    problem = act_as(identity, directory_problem, path)
    if problem:
        raise RelocateError("%s: cannot %s, %s" % (path, what, problem))


def check_config_link(path):
    """A config that is a symlink to someone else's file is neither read nor replaced: as root,
    following a link a user put in place of their config could show or overwrite any file on the host."""
    if os.path.islink(path) and os.path.exists(path) and os.lstat(path).st_uid != os.stat(path).st_uid:
        raise RelocateError("%s is a symlink to %s, which its owner does not own" % (path, os.path.realpath(path)))


def check_path_links(path):
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


# -- the journal -----------------------------------------------------------------------------


def text_sha256(text):
    if text is None:
        return "absent"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


class Journal(object):
    """The record of one move, ``<dest>/.pkgcache-relocate/journal.json``.

    It names the move (the config file it switches, the config text before and after as sha256,
    the MovePlan) and the step reached, and is rewritten atomically before each step:

    - ``copy``: the copy into ``STAGING/data`` (across filesystems); old cache and config untouched.
      A rerun rolls back (the staging dir goes) and starts over.
    - ``place``: the verified copy (or, on one filesystem, the old cache's entries) is renamed
      entry by entry into the new cache; ``urls.txt`` merged.  A rerun finishes placing.
    - ``switch``: the config file is written.  A rerun writes it (it is the old or the new text).
    - ``remove``: the old cache is renamed aside (the name is recorded) and removed.  A rerun
      finishes the removal.

    The journal is removed last (the commit point), then the staging dir: a staging dir without
    a journal holds nothing that is not also elsewhere, and the next run removes it.
    """

    def __init__(self, dest, record=None):
        self.dest = dest
        self.staging = os.path.join(dest, STAGING)
        self.path = os.path.join(self.staging, JOURNAL)
        self.record = record

    @classmethod
    def find(cls, dest, owner):
        """The journal of ``dest``: None without a staging dir, a Journal without record for a
        staging dir without a journal.  Only a staging dir ``owner`` (the uid the move runs as,
        who made it) owns is trusted: a journal someone else wrote could name any source."""
        staging = os.path.join(dest, STAGING)
        if not os.path.lexists(staging):
            return None
        if os.path.islink(staging) or not os.path.isdir(staging):
            raise RelocateError("%s is not a staging directory of this collection (a symlink or a file): "
                                "remove it by hand" % staging)
        if os.lstat(staging).st_uid != owner:
            raise RelocateError("%s belongs to uid %d, not to uid %d who would make it: not a staging directory "
                                "of this collection, remove it by hand" % (staging, os.lstat(staging).st_uid, owner))
        journal = cls(dest)
        try:
            fd = os.open(journal.path, READ_FLAGS)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return journal
            raise RelocateError("cannot read the relocation journal %s: %s" % (journal.path, describe_error(exc)))
        with os.fdopen(fd, "rb") as handle:
            if os.fstat(handle.fileno()).st_uid != owner:
                raise RelocateError("%s was not written by uid %d: not trusted, remove %s by hand" % (
                    journal.path, owner, staging))
            data = handle.read()
        try:
            record = json.loads(data.decode("utf-8"))
            if record.get("version") != 1 or record.get("step") not in STEPS:
                raise ValueError("unknown version or step")
        except (ValueError, AttributeError) as exc:
            raise RelocateError("%s is not a relocation journal this version can read (%s): finish or undo "
                                "that move by hand, then remove %s" % (journal.path, exc, staging))
        journal.record = record
        return journal

    @property
    def step(self):
        return self.record["step"] if self.record else None

    @property
    def move(self):
        return MovePlan.from_record(self.record["move"])

    def start(self, record):
        os.mkdir(self.staging, 0o700)
        self.record = dict(record, version=1)
        self.save(record["step"])

    def save(self, step, **fields):
        self.record.update(fields, step=step)
        write_atomic(self.path, json.dumps(self.record, sort_keys=True), mode=0o600, keep_existing=False)

    def discard(self, dest_fd):
        """Journal first, then the staging dir (``dest_fd`` is the new cache, held open)."""
        try:
            os.unlink(os.path.join(STAGING, JOURNAL), dir_fd=dest_fd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        rmtree_fd(dest_fd, STAGING)

    def describe(self):
        move = self.record["move"]
        return "an interrupted move of %s to %s for %s (stopped at step %s)" % (
            move["source"], move["dest"], self.record["config"], self.step)

    def check_request(self, config, before_text, after_text, before_source, migrate, link_old, same):
        """Refuse to adopt the journal of a move this task did not ask for: the task writes
        ``config`` from ``before_text`` to ``after_text`` and its old cache is ``before_source``;
        ``same`` names the options a rerun must repeat.  Returns False (and the caller leaves it
        alone) when the move is done but for removing the old copy and the task differs only in
        what it would do with a move (``migrate``, ``link_old``)."""
        record = self.record
        differs, options = [], []
        if record["config"] != config:
            differs.append("it writes %s" % record["config"])
        if record["after_sha256"] != text_sha256(after_text):
            differs.append("its new %s text is not this task's" % record["config"])
        now = text_sha256(before_text)
        if now not in (record["before_sha256"], record["after_sha256"]):
            differs.append("%s was changed since" % config)
        elif now == record["before_sha256"] and before_source != record["move"]["source"]:
            differs.append("it moves %s" % record["move"]["source"])
        if not migrate:
            options.append("it migrates")
        if record["move"]["link_old"] != link_old:
            options.append("it has link_old=%s" % record["move"]["link_old"])
        if not differs and (not options or self.step == "remove"):
            return not options
        raise RelocateError(
            "%s holds the journal of %s, which this task does not match (%s): run the task that started it "
            "again (%s) to finish it%s" % (
                self.staging, self.describe(), "; ".join(differs + options), same,
                "; nothing was moved yet, so removing %s discards it" % self.staging
                if self.step == "copy" else ""))

    def as_dict(self):
        if self.record is None:
            return {"step": None, "action": "remove the staging directory left by an earlier run"}
        action = "roll back and start over" if self.step == "copy" else "finish"
        return {"step": self.step, "action": action, "journal": self.path}


def read_text_file(path):
    """A config file's text, or None when there is none; a FIFO or device in its place is refused
    (``_fs.open_regular``), never waited on."""
    try:
        with io.open(open_regular(path, follow=True), **READ_TEXT) as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise RelocateError("cannot read %s: %s" % (path, exc))
    if not is_clean(text):
        raise RelocateError("%s has bytes that are not UTF-8 (conda itself refuses it); not edited" % path)
    return text


# -- doing it --------------------------------------------------------------------------------


def make_cache_dir(path, uid=None, gid=None, mode=None, markers=CACHE_MARKERS):
    """A cache its tool writes to: the dir plus the tool's ``markers`` (conda's ``urls.txt``/``urls``,
    without which ``conda clean`` skips it).

    It is made under a temporary name beside its own and renamed into place complete, so a
    killed run never leaves a half-made cache (no markers, wrong mode) under the real name; the
    next run removes the temporary one."""
    parent, base = os.path.split(path)
    if not os.path.isdir(parent):
        os.makedirs(parent)
    temp = "." + base + NEW
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | CLOEXEC)
    try:
        rmtree_fd(parent_fd, temp)
        os.mkdir(temp, 0o700, dir_fd=parent_fd)
        made = os.path.join(parent, temp)
        for marker in markers:
            os.close(os.open(os.path.join(made, marker), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        if uid is not None or gid is not None:
            for name in [made] + [os.path.join(made, m) for m in markers]:
                os.chown(name, -1 if uid is None else uid, -1 if gid is None else gid)
        os.chmod(made, 0o777 & ~_umask() if mode is None else mode)
        os.rename(temp, base, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Mover(object):
    """Carries out a MovePlan in two halves around the config switch, journaled step by step.

    :meth:`stage` (a new move) or :meth:`resume` (the journal's) puts the content in the new
    cache (undone by :meth:`rollback`); :meth:`finish` takes the old cache away.  Both caches stay
    locked against other runs of this collection from the first half to the end.
    """

    def __init__(self, move, journal):
        self.move = move
        self.kind = KINDS[move.kind]
        self.journal = journal
        self.placed = []
        self.urls_before = None
        self.old = None
        self.new = None

    def _lock(self):
        self.new = CacheDir(self.move.dest)
        source = self.move.source
        if os.path.isdir(source) and not os.path.islink(source):
            self.old = CacheDir(source)

    def stage(self, identity):
        """A new move: journal, copy (verified, synced) or nothing, then place."""
        move = self.move
        try:
            self._lock()
            self.urls_before = self._read_log(move.dest)
            first = "copy" if move.method == "copy" else "place"
            self.journal.start(dict(identity, step=first, move=move.record(), urls_before=self.urls_before))
            if move.method == "copy":
                self._copy_in()
                # The copy reaches the disk before the journal says it may replace the original.
                sync_filesystem(move.dest) or os.sync()
                self.journal.save("place")
            self._place()
        except (OSError, IOError, RelocateError, RemovalError, CopyError) as exc:
            self.rollback()
            raise RelocateError("moving %s to %s failed; config and old cache untouched, partial copy "
                                "removed: %s" % (move.source, move.dest, describe_error(exc)))

    def resume(self):
        """The journal's move, after a kill at step ``place`` or later."""
        try:
            self._lock()
            self.urls_before = self.journal.record["urls_before"]
            if self.journal.step == "place":
                self._place()
            else:
                self.placed = list(self.move.names)
        except (OSError, IOError, RelocateError, RemovalError) as exc:
            self.close()
            raise RelocateError("finishing %s failed: %s; the journal still describes it" % (
                self.journal.describe(), describe_error(exc)))

    def _copy_in(self):
        """Copy into the staging dir and verify; the old cache is only read."""
        move = self.move
        staged = os.path.join(self.journal.staging, STAGED)
        os.mkdir(staged, 0o700)
        copier = TreeCopier(hashed=self.kind.hashed)
        for name in move.names:
            copier.copy(os.path.join(move.source, name), os.path.join(staged, name))
        copier.verify()

    def _place(self):
        """Rename each entry into the new cache (same filesystem): from the staged copy, or from
        the old cache itself.  An entry already in place is one a killed run placed."""
        move = self.move
        origin = os.path.join(self.journal.staging, STAGED) if move.method == "copy" else move.source
        for name in move.names:
            src, dst = os.path.join(origin, name), os.path.join(move.dest, name)
            if os.path.lexists(src):
                if os.path.lexists(dst):
                    raise RelocateError("%s is both staged and in place" % dst)
                os.rename(src, dst)
            elif not os.path.lexists(dst):
                raise RelocateError("%s is neither staged nor in place" % dst)
            self.placed.append(name)
        if move.method == "copy" and os.path.lexists(origin):
            os.rmdir(origin)
        self._merge_urls()

    def _read_log(self, cache):
        log = self.kind.download_log
        return read_text_file(os.path.join(cache, log)) if log else None

    def _merge_urls(self):
        """The new ``urls.txt``: the old cache's download log, then lines only the new one had."""
        old = (self._read_log(self.move.source) or "").splitlines(True)
        extra = [line for line in (self.urls_before or "").splitlines(True) if line not in old]
        if old:
            self._write_urls("".join(old + extra))  # old is empty without a download log

    def _write_urls(self, text):
        """The temp file goes in the staging dir, which takes a killed writer's with it."""
        staging = self.journal.staging
        temp = (lambda: tempfile.mkstemp(dir=staging)) if os.path.isdir(staging) else None
        write_atomic(os.path.join(self.move.dest, self.kind.download_log), text, temp=temp)

    def rollback(self):
        """Undo the first half: the old cache as it was, the new one without our entries."""
        move = self.move
        try:
            if self.new is not None:
                if move.method == "rename":
                    for name in reversed(self.placed):
                        os.rename(os.path.join(move.dest, name), os.path.join(move.source, name))
                else:
                    for name in self.placed:
                        self.new.remove(name)
                if self.urls_before is not None:
                    self._write_urls(self.urls_before)
                if self.journal.record is not None:
                    self.journal.discard(self.new.fd)
        finally:
            self.close()

    def finish(self):
        """After the switch: the old cache goes (through the safe removal path), or becomes a
        symlink to the new one.  It is first renamed aside, so soft-linked environments see the
        old path vanish and come back as the link in one step, never a half-removed cache.
        The aside name is journaled first, so a rerun finds what is left."""
        move = self.move
        aside = self.journal.record.get("aside") or "%s%s.%d" % (move.source.rstrip("/"), ASIDE, os.getpid())
        try:
            if self.journal.step != "remove":
                self.journal.save("remove", aside=aside)
            if self.old is not None and not os.path.lexists(aside):
                os.rename(move.source, aside)
            if move.link_old and not os.path.lexists(move.source):
                os.symlink(move.dest, move.source)
            if os.path.lexists(aside):
                old = self.old or CacheDir(aside)
                self.old = old
                for name in sorted(os.listdir(old.fd)):
                    old.remove(name)
                old.close()
                os.rmdir(aside)
            self.journal.discard(self.new.fd)
            self.close()
        except (OSError, IOError, RemovalError) as exc:
            self.close()
            raise RelocateError("%s now holds the cache and the config points at it, but removing the old "
                                "copy failed (%s); what is left of it is in %s" % (move.dest, exc, aside))

    def close(self):
        for cache in (self.old, self.new):
            if cache is not None:
                cache.close()
        self.old = self.new = None


# -- a whole relocation -------------------------------------------------------------------------


class RelocationPlan(object):
    """One relocation, decided before anything is done; :func:`carry_out` executes it.

    ``config`` is the file switched, ``before_text``/``after_text`` its content (None: no file),
    ``create`` the cache directories to make, ``move`` a MovePlan or None, ``journal`` what a
    killed run left in the new cache (:func:`earlier_run`), ``actor`` whose credentials the move
    and the write run with (None: ours).  A tool's plan adds ``resolve()`` and ``expected`` (its
    resolution after the switch, and what it must be) and may hold the tool's own lock
    (``holding``).
    """

    def __init__(self, request, config, before_text, after_text, create, move, warnings, journal=None, actor=None):
        self.request = request
        self.config = config
        self.before_text = before_text
        self.after_text = after_text
        self.create = create
        self.move = move
        self.warnings = warnings
        self.journal = journal
        self.actor = actor
        self.done = set()  # what apply() changed and kept: "created", "config", "move", "recovery"

    @property
    def config_changes(self):
        return self.before_text != self.after_text

    @property
    def owner(self):
        """Whoever the config is written as keeps it."""
        return self.actor or self.request.viewer

    @property
    def resumes(self):
        """Whether the move is the journal's, finished rather than started."""
        return self.journal is not None and self.journal.step in STEPS[1:]

    @property
    def changed(self):
        return bool(self.config_changes or self.create or self.move or self.journal)

    @contextlib.contextmanager
    def holding(self):
        """No lock of the tool's own: the mover's CacheDir locks keep other runs of ours out."""
        yield

    def as_dict(self):
        return {
            "config_changed": self.config_changes,
            "created": list(self.create),
            "migration": self.move.as_dict() if self.move else None,
            "recovery": self.journal.as_dict() if self.journal else None,
        }

    def more_steps(self):
        """Lines a tool adds to the move plan."""
        return ""

    def diff(self):
        diffs = [{"before_header": self.config, "after_header": self.config,
                  "before": self.before_text or "", "after": self.after_text or ""}]
        steps = "".join("create cache %s\n" % d for d in self.create) + (self.move.describe() if self.move else "")
        steps += self.more_steps()
        if self.journal:
            steps = "%s: %s\n" % (self.journal.staging, self.journal.as_dict()["action"]) + steps
        if steps:
            diffs.append({"before_header": "move plan", "after_header": "move plan", "before": "", "after": steps})
        return diffs

    def summary(self, check_mode):
        """The recovery, the new directories and the move, for the module's one-line message."""
        parts = []
        if self.journal:
            parts.append("%s: %s" % (self.journal.staging, self.journal.as_dict()["action"] if check_mode else "recovered"))
        if self.create:
            parts.append("%s %s" % ("would create" if check_mode else "created", " ".join(self.create)))
        if self.move:
            move = self.move
            parts.append("%s %s -> %s by %s, old filesystem gains %s" % (
                "would move" if check_mode else "moved", move.source, move.dest, move.method,
                human_bytes(move.old_fs_gain)))
        return parts


def earlier_run(dest, actor, config, before_text, after_text, source, migrate, link_old, same, warnings):
    """``(journal, move)``: what a killed run left in the new cache ``dest`` (None: nothing), and
    the journal's move when this run is to finish it rather than plan its own (None).  A journal
    of another task is refused (:meth:`Journal.check_request`), or left alone with a warning when
    only the old copy's removal is left of it."""
    journal = Journal.find(dest, os.geteuid() if actor is None else actor.uid)
    if journal is not None and journal.record is not None and not journal.check_request(
            config, before_text, after_text, source, migrate, link_old, same):
        warnings.append("%s: the old copy of %s is left (%s); run that task again to remove it" % (
            journal.staging, journal.describe(), journal.record.get("aside", journal.record["move"]["source"])))
        return None, None
    if journal is not None and journal.step in STEPS[1:]:
        warnings.append("finishing %s" % journal.describe())
        return journal, journal.move
    return journal, None


def run_module(module, plan_of, apply, now_key=None):
    """A relocation module's run: the plan (a refusal fails the task and changes nothing), its
    diff, then unless in check mode :func:`apply`; a failure reports only what stayed changed.
    ``now_key``: the result key that gets what ``apply`` returns."""
    try:
        plan = plan_of(module.params)
    except options.OptionError as exc:
        module.fail_json(msg=str(exc))
    except (KeyError, ValueError) as exc:
        Results(module).fail("bad parameter: %s" % exc)
    except RelocateError as exc:
        Results(module).fail(str(exc))
    result = dict(changed=plan.changed, **plan.as_dict())
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = plan.diff()
    if plan.changed and not module.check_mode:
        try:
            now = apply(plan)
        except (RelocateError, OSError, IOError) as exc:
            # What stayed changed, not what was planned: a rolled-back move changed nothing.
            result.update(changed=bool(plan.done), config_changed="config" in plan.done)
            Results(module).fail(str(exc), warnings=plan.warnings, **result)
        if now_key:
            result[now_key] = now
    result["msg"] = "; ".join(plan.summary(module.check_mode)) + ("" if plan.changed else " (unchanged)")
    Results(module).exit(warnings=plan.warnings, **result)


def actor_of(config, homes):
    """Whose credentials a relocation declared in the file ``config`` acts with: those of whoever's
    word that file is (a user's own config, an installation a service account owns), so the
    kernel refuses whatever they could not do themselves; None for root's files or when this
    process is not root."""
    if os.geteuid() != ROOT:
        return None
    path = existing_ancestor(config)  # a file yet to be written is the word of whoever holds its dir
    uid = namer_of(path, homes)
    if uid == ROOT:
        return None
    if uid == ANYONE:
        raise RelocateError("%s is reached through a directory anyone may write: not editing it as root" % config)
    return Identity.of(uid, os.lstat(path).st_gid)


def write_config(path, text, uid=None, gid=None):
    """The atomic write with a temp file named by our pid: a killed run's temp is swept by the
    next one, not left beside the config."""
    directory = os.path.dirname(os.path.realpath(path))
    sweep_dead_temps(directory, CONFIG_TEMP)
    write_atomic(path, text, uid, gid, temp=lambda: tempfile.mkstemp(
        prefix="%s%d." % (CONFIG_TEMP, os.getpid()), dir=directory))


def _restore_config(path, text):
    if text is not None:
        write_config(path, text)
    elif os.path.lexists(path):
        os.unlink(path)


def _clear_staging(journal):
    """A staging dir that holds nothing to finish: no journal (debris), or a killed copy."""
    with CacheDir(journal.dest) as cache:
        journal.discard(cache.fd)


def carry_out_as_actor(plan):
    """:func:`carry_out` with ``plan.actor``'s credentials (in a child when they are not ours)."""
    if plan.actor is None:
        return carry_out(plan)
    try:
        answer = act_as(plan.actor, _carry_out_reporting, plan)
    except PrivDropError as exc:
        raise RelocateError("moving the cache as %s: %s" % (plan.actor.name, exc))
    plan.done = set(answer["done"])
    if "error" in answer:
        raise RelocateError(answer["error"])
    return answer["now"]


def _carry_out_reporting(plan):
    """:func:`carry_out` in a child: its answer and what stayed changed, as plain values."""
    try:
        return {"now": carry_out(plan), "done": sorted(plan.done)}
    except (RelocateError, OSError, IOError) as exc:
        return {"error": describe_error(exc), "done": sorted(plan.done)}


def carry_out(plan):
    """Recovery, the move, the config switch, the removal of the old copy; returns what the tool
    now resolves.

    ``plan`` is a relocation decided beforehand: ``journal`` (what a killed run left, or None),
    ``resumes`` (whether the move is that journal's), ``move`` (a MovePlan or None), ``config``
    (the file switched), ``before_text``/``after_text`` (None: no file), ``owner`` (whose the
    written file is), ``done`` (a set this fills with what changed and stayed changed), and
    ``resolve()``/``expected``: the tool's resolution after the switch and what it must be, and
    ``holding()``: a context that keeps the tool itself off the caches until the config names the
    new one.  The old copy is removed after it is let go: a lock file in that copy (uv's ``.lock``)
    is only removed while nobody holds it, ourselves included."""
    with plan.holding():
        now, mover = _carry_out(plan)
    if mover:
        mover.finish()
    return now


def _carry_out(plan):
    if plan.journal is not None and not plan.resumes:
        _clear_staging(plan.journal)
        plan.done.add("recovery")
    mover = None
    if plan.resumes:
        mover = Mover(plan.move, plan.journal)
        mover.resume()
        plan.done.update(("recovery", "move"))
    elif plan.move:
        mover = Mover(plan.move, Journal(plan.move.dest))
        mover.stage({"config": plan.config, "before_sha256": text_sha256(plan.before_text),
                     "after_sha256": text_sha256(plan.after_text)})
        plan.done.add("move")
    if mover is not None and mover.journal.step == "remove":
        # The killed run had switched and checked the config; only the removal is left.
        now = plan.resolve()
    else:
        now = _switch(plan, mover)
    return now, mover


def _switch(plan, mover):
    """Write the config and check what the tool now resolves; on failure undo it and the move."""
    changes = plan.before_text != plan.after_text
    try:
        if mover:
            mover.journal.save("switch")
        if changes:
            if plan.after_text is None:
                os.unlink(plan.config)
            else:
                write_config(plan.config, plan.after_text, plan.owner.uid, plan.owner.gid)
            plan.done.add("config")
        now = plan.resolve()
        if now != plan.expected:
            raise RelocateError("after writing %s the cache resolves to %s, expected %s" % (
                plan.config, now, plan.expected))
    except (OSError, IOError, RelocateError) as exc:
        if changes:
            _restore_config(plan.config, plan.before_text)
            plan.done.discard("config")
        if mover:
            mover.rollback()
            plan.done.discard("move")
        raise RelocateError("config switch failed, %s restored%s: %s" % (
            plan.config, " and the move undone" if mover else "", describe_error(exc)))
    return now


def describe_error(exc):
    """``path: No space left on device`` rather than a tuple repr."""
    if isinstance(exc, EnvironmentError) and exc.strerror:
        return "%s: %s" % (exc.filename, exc.strerror) if exc.filename else exc.strerror
    return str(exc)
