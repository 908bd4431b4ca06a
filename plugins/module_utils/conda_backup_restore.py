# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify a backup directory's objects against their names and manifests; restore a manifest's
tarballs into a cache (under its lock, fd-relative, symlink-proof) and check them against the
extracted packages' records.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat
import time

from ansible_collections.pkgcache.fleet.plugins.module_utils import _removal
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import ROOT, act_as, authority
from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import WriteFailed, hash_copy
from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import sweep_dead_temps, write_all
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import CLOEXEC, CREATE_FLAGS, READ_FLAGS, existing_ancestor
from ansible_collections.pkgcache.fleet.plugins.module_utils._privdrop import PrivDropError
from ansible_collections.pkgcache.fleet.plugins.module_utils._parallel import run_parallel
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_store import (
    STORE_DIR, BackupError, Manifest, backup_error, read_record, verify_object)

RESTORE_TMP_SUFFIX = ".pkgcache-tmp"


# -- verify ----------------------------------------------------------------------------------------

def verify_targets(store, manifest=None):
    """``{sha256: size or None}`` to check: a manifest's entries, or every stored object plus every
    object any manifest names (so a missing one shows).  Also returns unreadable manifests."""
    targets, bad = {}, []
    if manifest is not None:
        for entry in manifest.entries:
            targets[entry["sha256"]] = entry["size"]
        return targets, bad
    root = store.path(STORE_DIR)
    for shard in _listdir(root):
        for name in _listdir(os.path.join(root, shard)):
            targets[name] = None
    for host in store.hosts():
        for path in store.manifest_paths(host):
            try:
                for entry in Manifest.load(path).entries:
                    targets[entry["sha256"]] = entry["size"]
            except BackupError as exc:
                bad.append(str(exc))
    return targets, bad


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def verify(store, manifest=None, workers=2):
    """Re-hash what :func:`verify_targets` names; ``(checked, missing, corrupt, bad_manifests)``."""
    targets, bad = verify_targets(store, manifest)
    order = sorted(targets)
    problems = run_parallel(lambda sha: verify_object(store, sha, targets[sha]), order, workers)
    missing, corrupt = [], []
    for sha, problem in zip(order, problems):
        if problem == "missing":
            missing.append({"sha256": sha, "path": store.object_path(sha)})
        elif problem:
            corrupt.append({"sha256": sha, "path": store.object_path(sha), "reason": problem})
    return len(order), missing, corrupt, bad


# -- restore ---------------------------------------------------------------------------------------

class RestoreItem(object):
    __slots__ = ("entry", "target", "action", "reason", "record_check")

    def __init__(self, entry, target):
        self.entry, self.target = entry, target
        self.action, self.reason, self.record_check = None, None, None

    def as_dict(self):
        result = {"fn": self.entry["fn"], "path": self.target, "size": self.entry["size"],
                  "sha256": self.entry["sha256"]}
        if self.reason:
            result["reason"] = self.reason
        return result


def plan_restore(store, manifest, cache_path, warnings, workers=2, from_caches=None):
    """Per manifest entry: ``present`` (same content already there), ``restore``, ``replace`` (a
    different file has the name) or ``failed`` (the store lacks the object).

    ``from_caches`` limits the entries to those backed up from these caches (one user's cache
    back into itself, rather than every cache of the host into one).
    """
    wanted = None if from_caches is None else set(os.path.realpath(p) for p in from_caches)
    items, by_fn = [], {}
    for entry in manifest.entries:
        if wanted is not None and os.path.realpath(entry.get("cache") or "") not in wanted:
            continue
        known = by_fn.get(entry["fn"])
        if known is not None:
            if known["sha256"] != entry["sha256"]:
                warnings.append("%s: the manifest has two different files with this name; restoring %s"
                                % (entry["fn"], known["sha256"]))
            continue
        by_fn[entry["fn"]] = entry
        items.append(RestoreItem(entry, os.path.join(cache_path, entry["fn"])))
    run_parallel(lambda item: _classify_restore(store, item), items, workers)
    return items


def _classify_restore(store, item):
    entry = item.entry
    try:
        st = os.lstat(item.target)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == entry["size"]:
        try:
            if hash_copy(item.target, want_md5=False)[1] == entry["sha256"]:
                item.action = "present"
                return
        except OSError:
            pass
    if not store.has(entry["sha256"], entry["size"]):
        item.action, item.reason = "failed", "object %s is missing from the store" % store.object_path(entry["sha256"])
        return
    item.action = "replace" if st is not None else "restore"


BATCH = 256  # store objects opened at a time for a restore that runs as the cache's owner


def restore_identity(cache_path, routes=None):
    """Whose credentials a restore into ``cache_path`` runs with, from the ``(path, namer uid)``
    routes naming it (None: named by the operator, root's word): the cache's owner when they or
    root named it, root for root's caches.  A cache yet to be made is judged by its nearest
    existing parent.  Raises BackupError with the reason when nobody's word is good enough."""
    if routes is None:
        routes = [(cache_path, ROOT)]
    where = existing_ancestor(cache_path)
    if where != cache_path:
        routes = [(where, namer) for _path, namer in routes]
    identity, _expect, why = authority(where, routes)
    if why is not None:
        raise BackupError("not restoring into %s: %s" % (cache_path, why))
    return identity


def execute_restore(store, items, cache_path, workers=2, identity=None):
    """Copy objects into the cache under its lock, fd-relative and symlink-proof; append URLs.

    The cache is written with ``identity``'s credentials (None: this process's), so the kernel
    refuses whatever its owner could not do; the store's objects are opened here, in batches,
    and handed over as open files.  Returns the URLs added to ``urls.txt``.
    """
    work = [i for i in items if i.action in ("restore", "replace")]
    urls = [i.entry["url"] for i in items if i.action in ("present", "restore", "replace") and i.entry.get("url")]
    if identity is None or identity.uid == os.geteuid():
        return _write_cache(cache_path, work, [store.object_path(i.entry["sha256"]) for i in work], urls, workers)["urls"]
    batches = [work[start:start + BATCH] for start in range(0, len(work), BATCH)] or [[]]
    added = []
    for number, batch in enumerate(batches):
        sources = []
        try:
            for item in batch:
                sources.append(_open_object(store, item))
            last = number == len(batches) - 1
            answer = act_as(identity, _write_cache, cache_path, batch, sources, urls if last else None, workers)
        except PrivDropError as exc:
            raise BackupError("restoring into %s as %s: %s" % (cache_path, identity.name, exc))
        finally:
            for fd in sources:
                os.close(fd)
        for item, (action, reason) in zip(batch, answer["outcomes"]):
            item.action, item.reason = action, reason
        added.extend(answer["urls"])
    return added


def _open_object(store, item):
    try:
        return os.open(store.object_path(item.entry["sha256"]), READ_FLAGS)
    except OSError as exc:
        raise backup_error("cannot read the stored object for", item.target, exc)


def _write_cache(cache_path, work, sources, urls, workers):
    """The writing half of a restore, in whatever process runs it: ``{"outcomes": [(action,
    reason)] per item of work, "urls": added}``.  ``sources``: per item, the object's path or an
    open fd.  ``urls``: None leaves ``urls.txt`` alone."""
    if not os.path.isdir(cache_path):
        try:
            os.makedirs(cache_path, 0o755)
        except OSError as exc:
            raise backup_error("cannot create cache", cache_path, exc)
    try:
        cache = _removal.CacheDir(cache_path)
    except (OSError, _removal.RemovalError) as exc:
        raise BackupError("cannot open cache %s: %s" % (cache_path, exc))
    with cache:
        owner = os.fstat(cache.fd)
        sweep_dead_temps(cache.path, ".", RESTORE_TMP_SUFFIX, dir_fd=cache.fd)
        run_parallel(lambda pair: _restore_one(pair[1], pair[0], cache.fd, owner), list(zip(work, sources)), workers)
        os.fsync(cache.fd)
        added = [] if urls is None else _append_urls(cache.fd, urls, owner)
    return {"outcomes": [(item.action, item.reason) for item in work], "urls": added}


def _restore_one(source, item, dir_fd, owner):
    entry = item.entry
    temp = ".%d.%s%s" % (os.getpid(), entry["fn"], RESTORE_TMP_SUFFIX)
    try:
        fd = os.open(temp, CREATE_FLAGS, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        raise backup_error("cannot create temp file in", item.target, exc)
    keep = False
    try:
        try:
            size, sha256, _md5, _b, _a = hash_copy(source, fd, want_md5=False)
            if os.geteuid() == 0:
                os.fchown(fd, owner.st_uid, owner.st_gid)
            os.utime(fd, ns=(entry.get("mtime_ns") or int(entry.get("mtime", time.time()) * 1e9),) * 2)
        finally:
            os.close(fd)
        if sha256 != entry["sha256"] or size != entry["size"]:
            item.action, item.reason = "failed", "stored object is corrupt (hashes to %s); not restored" % sha256
            return
        os.rename(temp, entry["fn"], src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        keep = True
    except WriteFailed as exc:
        raise backup_error("cannot restore", item.target, exc.error)
    except OSError as exc:
        raise backup_error("cannot restore", item.target, exc)
    finally:
        if not keep:
            try:
                os.unlink(temp, dir_fd=dir_fd)
            except OSError:
                pass


def _append_urls(dir_fd, urls, owner):
    """Add the URLs ``urls.txt`` lacks (creating it makes the cache conda-writable)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | CLOEXEC
    fd = os.open("urls.txt", flags, 0o644, dir_fd=dir_fd)
    try:
        with os.fdopen(os.dup(fd), "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
        known = set(line.strip() for line in text.splitlines())
        added = []
        for url in urls:
            if url not in known:
                known.add(url)
                added.append(url)
        if added:
            prefix = "" if not text or text.endswith("\n") else "\n"
            write_all(fd, memoryview((prefix + "".join(u + "\n" for u in added)).encode("utf-8")))
            os.fsync(fd)
        if os.geteuid() == 0:
            os.fchown(fd, owner.st_uid, owner.st_gid)
    finally:
        os.close(fd)
    return added


def run_restore(store, manifest, cache_path, warnings, check_mode=False, workers=2, from_caches=None, identity=None):
    """Plan and (unless ``check_mode``) restore as ``identity``; ``(items, urls added, record mismatches)``."""
    items = plan_restore(store, manifest, cache_path, warnings, workers, from_caches)
    urls = [] if check_mode else execute_restore(store, items, cache_path, workers, identity)
    return items, urls, check_against_records(cache_path, items)


def check_against_records(cache_path, items):
    """After a restore: each tarball whose extracted package has a record must match it."""
    mismatches = []
    for item in items:
        if item.action not in ("present", "restore", "replace"):
            continue
        record, _problem = read_record(cache_path, item.entry["fn"])
        if not record:
            continue
        for algorithm in ("sha256", "md5", "size"):
            want, got = record.get(algorithm), item.entry.get(algorithm)
            if want is not None and got is not None and str(want).lower() != str(got).lower():
                mismatches.append({"fn": item.entry["fn"], "field": algorithm, "record": want, "restored": got})
                break
    return mismatches
