# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verified, incremental, content-addressed backup of conda package tarballs: plan, read and copy,
write the manifest, prune.

The backup directory (its layout, the store, manifests) is ``conda_backup_store``; verify and
restore are ``conda_backup_restore``; the offline channel is ``conda_channel``.

How a run decides what to read:

* A tarball is *unchanged* when this host's last manifest has an entry for the same path with the
  same size, mtime, ctime (nanoseconds) and inode, and the store holds an object of that size
  under the entry's sha256: neither it nor its repodata record is read, and nothing is copied.
  ctime cannot be set back by anyone but the clock, so a rewrite in place that restores the
  mtime is still read again.
* Anything else is read once.  When ``info/repodata_record.json`` of its extracted package exists,
  the tarball must match the record's size and sha256 (md5 when the record has no sha256; a
  matching sha256 implies the record's md5, which is then taken from the record).  Without a
  record both digests are computed.  A tarball that does not match is reported, never stored.
* The copy is made in the same pass (each chunk hashed, then copied by the kernel), unless the
  record's sha256 already names an object in the store; content found in the store after hashing
  is not stored twice.
* Pruned tarballs (``prune_source``) stay in later manifests while they are absent from their
  cache, so restoring the latest manifest brings them back.

What a run relies on in the store, and how it checks it (a damaged object is *repaired*: replaced
by a verified copy of the tarball, renamed over it, and listed in the result and the manifest's
``repaired``):

* An object whose size differs from the tarball's is never trusted, whatever the action.
* A tarball that is read and whose content the store already holds has that object re-hashed too:
  one more read of a file of the tarball's size, for tarballs read while their content is stored
  (a host joining a shared store, a tarball touched since the last run).
* An unchanged tarball's object is only size-checked, unless ``rehash`` (or ``prune_source``, which
  re-hashes every object before its tarball leaves the cache): then it is re-hashed, and read
  again and repaired when damaged.  ``state: verified`` re-hashes the whole store.
* A run killed after a repair's rename but before its manifest leaves the object intact and the
  repair unrecorded: the next run finds nothing to repair.

Check mode runs the same reads and verifications and writes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import authority
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage
from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import WriteFailed, hash_copy
from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import sync_filesystem, unlink_quiet
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import READ_FLAGS
from ansible_collections.pkgcache.fleet.plugins.module_utils._parallel import run_parallel
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import CachePlan, execute
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_envs import record_environments
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_store import (
    CHANNEL_DIR, MANIFEST_DIR, TMP_DIR, Manifest, backup_error, object_damage, read_record, utc_stamp, verify_object)
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_channel import refresh_channel

BATCH_BYTES = 512 << 20


# -- what the caches hold ---------------------------------------------------------------------------

def read_urls(cache_path):
    """``{fn: url}`` from the cache's ``urls.txt`` (the last URL for a file name wins)."""
    urls = {}
    try:
        with open(os.path.join(cache_path, "urls.txt")) as handle:
            for line in handle:
                url = line.strip()
                if url:
                    urls[url.rsplit("/", 1)[-1]] = url
    except (OSError, IOError):
        pass
    return urls


def channel_and_subdir(url):
    """``https://h/conda-forge/linux-64/x.conda`` -> (``https://h/conda-forge/linux-64``, ``linux-64``)."""
    if not url or "/" not in url:
        return None, None
    channel = url.rsplit("/", 1)[0]
    return channel, channel.rsplit("/", 1)[-1]


# -- backup ----------------------------------------------------------------------------------------

class Item(object):
    """One tarball of a selected cache and what the run does with it.

    ``action``: ``unchanged`` (last manifest still true: no read), ``read`` (planned: its record,
    read by a worker just before the tarball, decides between) ``verify`` (content already in the
    store: hash only) and ``copy`` (hash while copying), ``failed``.
    """

    __slots__ = ("cache", "fn", "path", "size", "mtime_ns", "ctime_ns", "ino", "record", "url", "action", "entry",
                 "reason", "copied", "temp", "damage", "repaired", "object_ok")

    def __init__(self, cache, fn, path, st):
        self.cache, self.fn, self.path = cache, fn, path
        self.size, self.mtime_ns, self.ctime_ns, self.ino = st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
        self.record, self.url = None, None
        self.action, self.entry, self.reason, self.copied = None, None, None, False
        self.temp = None  # written, not yet fsynced and renamed
        self.damage = None  # what is wrong with the stored object of its content: it is replaced
        self.repaired = False
        self.object_ok = False  # its stored object was re-hashed intact by this run

    def expected(self):
        """``(algorithm, digest)`` the record asks for, or (None, None)."""
        record = self.record or {}
        for algorithm in ("sha256", "md5"):
            if record.get(algorithm):
                return algorithm, str(record[algorithm]).lower()
        return None, None

    def as_dict(self):
        result = {"source": self.path, "fn": self.fn, "size": self.size}
        if self.entry:
            result["sha256"] = self.entry["sha256"]
        if self.reason:
            result["reason"] = self.reason
        if self.damage:
            result["damage"] = self.damage
        return result


class BackupPlan(object):
    def __init__(self, store, last, warnings):
        self.store = store
        self.last = last
        self.warnings = warnings
        self.items = []
        self.carried = []  # manifest entries of pruned tarballs still absent from their cache
        self.environments = []  # see conda_backup_envs.record_environments

    def of(self, *actions):
        return [i for i in self.items if i.action in actions]

    def entries(self):
        entries = [i.entry for i in self.items if i.entry is not None] + self.carried
        return sorted(entries, key=lambda e: e["source"])

    def repairs(self):
        """The manifest's ``repaired``: each object replaced (in check mode: to replace)."""
        return [{"sha256": i.entry["sha256"], "size": i.size, "source": i.path, "damage": i.damage}
                for i in self.items if i.repaired]

    def manifest_changed(self):
        """A new manifest is due when what it would say differs from the last one (compared as
        the JSON values they are; no need to encode them), or when it has repairs to record."""
        if any(i.repaired for i in self.items):
            return True
        if self.last is None:
            return bool(self.entries() or self.environments)
        return (self.entries() != sorted(self.last.entries, key=lambda e: e["source"])
                or self.environments != self.last.environments)


def plan_backup(caches, store, warnings, rehash=False, workers=2):
    """Tell unchanged tarballs from those to read, from their lstat alone (with ``rehash``, an
    unchanged tarball whose object does not re-hash intact is read too); ``urls.txt`` is read
    only for a cache with tarballs to read, their records by :func:`execute_backup`."""
    last = store.latest()
    previous = last.by_source if last else {}
    plan = BackupPlan(store, last, warnings)
    seen = set()
    urls = {}
    for cache in caches:
        if any("/" in t.relpath for t in cache.tarballs):
            warnings.notice("%s: tarballs in mamba's channel folders are not backed up (a backup keeps a "
                            "cache's top-level tarballs)" % cache.path)
        for tarball in cache.tarballs:
            if "/" in tarball.relpath:
                continue
            path = tarball.path
            try:
                st = os.lstat(path)
            except OSError as exc:
                warnings.path_error(path, exc)
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            seen.add(path)
            item = Item(cache, tarball.relpath, path, st)
            plan.items.append(item)
            if not _unchanged(item, previous.get(path), store):
                _to_read(item, urls)
    if rehash:
        unchanged = plan.of("unchanged")
        damages = run_parallel(lambda i: object_damage(store, i.entry["sha256"], i.size, rehash=True),
                               unchanged, workers)
        for item, damage in zip(unchanged, damages):
            item.object_ok = damage is None
            if damage is not None:
                item.entry = None
                _to_read(item, urls)
    for source, entry in previous.items():
        if entry.get("pruned") and source not in seen and not os.path.lexists(source):
            plan.carried.append(entry)
    return plan


def _to_read(item, urls):
    """Plan the item's read; ``urls``: ``{cache path: its urls.txt}``, read once per cache."""
    known = urls.get(item.cache.path)
    if known is None:
        known = urls[item.cache.path] = read_urls(item.cache.path)
    item.action, item.url = "read", known.get(item.fn)


def _unchanged(item, previous, store):
    """The last manifest still describes this file (see the module docstring): take its entry."""
    if (previous and previous["size"] == item.size and previous.get("mtime_ns") == item.mtime_ns
            and previous.get("ctime_ns") == item.ctime_ns and previous.get("ino") == item.ino
            and store.has(previous["sha256"], item.size)):
        item.action = "unchanged"
        item.entry = dict(previous, pruned=False)
        return True
    return False


def _classify(item, store):
    """Read the item's record and decide: ``failed`` (size differs), ``verify`` or ``copy``.
    Returns the record's problem (a warning) or None."""
    item.record, problem = read_record(item.cache.path, item.fn)
    item.url = (item.record or {}).get("url") or item.url
    record_size = (item.record or {}).get("size")
    if isinstance(record_size, int) and record_size != item.size:
        item.action = "failed"
        item.reason = "size %d differs from repodata_record.json (%d)" % (item.size, record_size)
        return problem
    algorithm, digest = item.expected()
    item.action = "copy"
    if algorithm == "sha256":
        damage = object_damage(store, digest, item.size, rehash=True)
        if damage is None:
            item.action, item.object_ok = "verify", True
        elif damage != "missing":
            item.damage = damage
    return problem


def execute_backup(plan, check_mode, workers=2):
    """Read (and unless ``check_mode`` copy) every item that needs it; fill entries and failures.

    Copies go in batches of about ``BATCH_BYTES``: every file of a batch is written, the batch is
    flushed with one ``syncfs`` (fsync per file where that is missing), then each file is renamed
    to its object name.  One flush per batch instead of one per file is what ``cp; sync`` costs
    (per-file fsyncs took ~0.75 s more per 400 MiB here), and still no name in the store ever
    points at data that is not on disk.

    Raises :class:`BackupError` on a write failure (disk full, read-only); temp files are removed
    and the store keeps only complete objects.
    """
    store = plan.store
    try:
        # Largest first, so the workers finish together rather than one hashing a big file alone.
        for batch in _batches(sorted(plan.of("read"), key=lambda item: -item.size)):
            problems = run_parallel(lambda item: _ingest(item, store, check_mode), batch, workers)
            plan.warnings.extend(p for p in problems if p)
            written = [i for i in batch if i.temp]
            flushed = bool(written) and _flush(store, written[0])
            # Renames alone are quicker in this thread; fsyncs (no syncfs) overlap in the pool.
            run_parallel(lambda item: _commit(item, store, flushed), written, 1 if flushed else workers)
    finally:
        for item in plan.items:
            if item.temp is not None:
                unlink_quiet(item.temp)
                item.temp = None
    if not check_mode:
        store.sync()
    return plan


def _batches(items):
    batch, size = [], 0
    for item in items:
        batch.append(item)
        size += item.size
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _ingest(item, store, check_mode):
    """Classify, then read one tarball; returns the warning about its record, if any."""
    warning = _classify(item, store)
    if item.action != "failed":
        _hash_copy_check(item, store, check_mode)
    return warning


def _hash_copy_check(item, store, check_mode):
    """Hash (and copy to a temp file) one tarball and check it against its record."""
    algorithm, digest = item.expected()
    # md5 is read when the record can only be checked by it, or when no record supplies it.
    want_md5 = algorithm != "sha256"
    write = not check_mode and item.action == "copy"
    fd, temp = store.temp() if write else (None, None)
    try:
        try:
            size, sha256, md5, before, after = hash_copy(item.path, fd, want_md5, sync=False)
        except WriteFailed as exc:
            raise backup_error("cannot write the backup of %s to" % item.path, temp, exc.error)
        except OSError as exc:
            item.action, item.reason = "failed", "cannot read: %s" % (exc.strerror or exc)
            return
        finally:
            if fd is not None:
                os.close(fd)
        problem = _mismatch(item, size, sha256, md5, algorithm, digest, before, after)
        if problem:
            item.action, item.reason = "failed", problem
            return
        if md5 is None:
            md5 = str(item.record["md5"]) if item.record.get("md5") else None
        item.entry = _entry(item, sha256, md5, algorithm or "none")
        if item.action == "copy":
            _check_stored(item, store, temp is None)
        item.temp, temp = temp, None
    finally:
        if temp is not None:
            unlink_quiet(temp)


def _check_stored(item, store, predict):
    """After hashing a tarball to copy: is its content stored already, intact (then the copy is
    dropped), damaged (then it replaces the object), or new?  ``predict`` (check mode) sets what
    the commit would."""
    fresh = False
    if item.damage is None:
        damage = object_damage(store, item.entry["sha256"], item.size, rehash=True)
        item.object_ok = damage is None
        fresh = damage == "missing"
        if damage is not None and not fresh:
            item.damage = damage
    if predict:
        item.copied, item.repaired = fresh, item.damage is not None


def _flush(store, item):
    try:
        return sync_filesystem(store.path(TMP_DIR))
    except OSError as exc:
        raise backup_error("cannot write the backup of %s to" % item.path, store.path(TMP_DIR), exc)


def _commit(item, store, flushed):
    """Give a written temp file its object name, after an fsync unless its batch was flushed."""
    if not flushed:
        try:
            fd = os.open(item.temp, READ_FLAGS)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise backup_error("cannot write the backup of %s to" % item.path, item.temp, exc)
    temp, item.temp = item.temp, None
    done = store.commit(temp, item.entry["sha256"], replace=item.damage is not None)
    if item.damage is not None:
        item.repaired = done
    else:
        item.copied = done


def _mismatch(item, size, sha256, md5, algorithm, digest, before, after):
    planned = (item.ino, item.size, item.mtime_ns)
    if (before.st_ino, before.st_size, before.st_mtime_ns) != planned or size != item.size \
            or (after.st_ino, after.st_size, after.st_mtime_ns) != planned:
        return "changed while being read"
    if algorithm == "sha256" and sha256 != digest:
        return "sha256 %s does not match repodata_record.json (%s)" % (sha256, digest)
    if algorithm == "md5" and md5 != digest:
        return "md5 %s does not match repodata_record.json (%s)" % (md5, digest)
    return None


def _entry(item, sha256, md5, verified):
    record = item.record or {}
    channel, subdir = channel_and_subdir(item.url)
    return {
        "fn": item.fn,
        "size": item.size,
        "md5": md5,
        "sha256": sha256,
        "url": item.url,
        "channel": record.get("channel") or channel,
        "subdir": record.get("subdir") or subdir,
        "source": item.path,
        "cache": item.cache.path,
        "mtime": item.mtime_ns / 1e9,
        "mtime_ns": item.mtime_ns,
        "ctime_ns": item.ctime_ns,
        "ino": item.ino,
        "verified": verified,
        "pruned": False,
        "record": item.record,
    }


def write_manifest(plan, now=None):
    """Write this run's manifest when it says something new; returns its path or None."""
    if not plan.manifest_changed():
        return None
    store = plan.store
    created = utc_stamp(now)
    manifest = Manifest(store.host_id, created, plan.entries(), repaired=plan.repairs(), environments=plan.environments)
    return store.write_json(os.path.join(MANIFEST_DIR, store.host_id, created + ".json"), manifest.as_dict())


def plan_prune(plan, workers=2, routes_of=None, check_mode=False):
    """Items whose tarball may leave its cache: stored in this run's manifest, the stored object
    re-hashed intact (once per run: objects this run writes are read back; in check mode, those it
    would write are taken as written), and the cache one this run may clean (``routes_of(cache)``,
    see ``cleanup.CachePlan.authorize``; without it the run's own credentials are used).
    Returns ``(items, cache plans, failures)``."""
    candidates = [i for i in plan.items if i.entry is not None]

    def problem_of(item):
        if item.object_ok or (check_mode and (item.copied or item.repaired)):
            return None
        return verify_object(plan.store, item.entry["sha256"], item.size)

    problems = run_parallel(problem_of, candidates, workers)
    chosen, plans, failures = [], {}, []
    for item, problem in zip(candidates, problems):
        if problem:
            failures.append({"source": item.path, "reason": "not pruned: stored object %s" % problem})
            continue
        cache_plan = plans.get(item.cache.path)
        if cache_plan is None:
            cache_plan = plans[item.cache.path] = CachePlan(item.cache.path, "backup")
            if routes_of is not None:
                cache_plan.authorize(routes_of(item.cache))
        if cache_plan.skipped:
            failures.append({"source": item.path, "reason": "not pruned: %s" % cache_plan.skipped})
            continue
        cache_plan.remove(item.fn, "stored and verified", DiskUsage())
        chosen.append(item)
    return chosen, [plans[path] for path in sorted(plans)], failures


class BackupRun(object):
    """What one ``state: present`` run did (or, in check mode, would do)."""

    def __init__(self, plan):
        self.plan = plan
        self.manifest = None
        self.prune_items = []
        self.prune_plans = []
        self.pruned = []
        self.prune_failures = []
        self.channel = None
        self.channel_changed = False
        self.skipped = []  # caches left out, with the reason

    @property
    def copied(self):
        return [i for i in self.plan.items if i.copied]

    @property
    def repaired(self):
        return [i for i in self.plan.items if i.repaired]

    @property
    def changed(self):
        return bool(self.copied or self.repaired or self.plan.manifest_changed() or self.pruned or self.channel_changed)


def authorized(caches, routes_of):
    """``(caches a root run may read into the store, [{cache, reason}] left out)``: those the
    removal rule would let it act on (``_authority.authority``).  A user's config or symlink naming
    root's directory would otherwise copy root's files into a store the user may be able to read."""
    chosen, skipped = [], []
    for cache in caches:
        _identity, _expect, why = authority(cache.path, routes_of(cache))
        if why is None:
            chosen.append(cache)
        else:
            skipped.append({"cache": cache.path, "reason": "not backed up: %s" % why})
    return chosen, skipped


def run_backup(store, caches, warnings, check_mode=False, workers=2, prune_source=False, channel=False,
               routes_of=None, rehash=False, environments=()):
    """Plan, read/copy (repairing damaged objects), record ``environments`` (checked against what
    the store holds once the copies are in), optionally prune (through the cleanup pipeline, on
    the authority ``routes_of`` gives each cache), write the manifest, optionally refresh the
    channel.  ``rehash`` (implied by ``prune_source``) re-hashes unchanged tarballs' objects too.

    The manifest is written before any tarball leaves its cache, so a run killed while pruning
    still has every pruned tarball on record.
    """
    if not check_mode:
        store.prepare()
    skipped = []
    if routes_of is not None:
        caches, skipped = authorized(caches, routes_of)
    plan = plan_backup(caches, store, warnings, rehash or prune_source, workers)
    run = BackupRun(execute_backup(plan, check_mode, workers))
    run.skipped = skipped
    plan.environments = record_environments(environments, plan, store, warnings)
    if prune_source:
        run.prune_items, run.prune_plans, run.prune_failures = plan_prune(run.plan, workers, routes_of, check_mode)
        for item in run.prune_items:
            item.entry["pruned"] = True
        run.pruned = [i.path for i in run.prune_items]
    if not check_mode:
        run.manifest = write_manifest(run.plan)
        if run.prune_items:
            run.pruned, _freed, errors = execute(run.prune_plans)
            run.prune_failures.extend({"source": e, "reason": "prune failed"} for e in errors)
    if channel:
        run.channel_changed = refresh_channel(store, warnings, check_mode)
        run.channel = store.path(CHANNEL_DIR)
    return run
