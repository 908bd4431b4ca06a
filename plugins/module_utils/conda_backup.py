# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verified, incremental, content-addressed backup of conda package tarballs; verify; restore.

Layout of a backup directory (``dest``), shared by any number of hosts::

    store/sha256/<aa>/<sha256>           each distinct tarball once, named by its content
    manifests/<host>/<UTC stamp>.json    one per run that changed something: what the caches held
    channel/<subdir>/{repodata.json,<fn>} optional: a file:// channel conda can install from
    tmp/<host>.<pid>.<n>                 files being written; renamed into the store when complete

Every file reaches its final name by ``rename`` once its data is on disk (``syncfs`` per batch, or
``fsync``): a killed or failing run never leaves a partial file under a final name, and the store
only ever gains complete objects.

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

Check mode runs the same reads and verifications and writes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import hashlib
import json
import os
import re
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.pkgcache.fleet.plugins.module_utils import _removal
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import strip_tarball_suffix

FORMAT = 1
STORE_DIR = os.path.join("store", "sha256")
MANIFEST_DIR = "manifests"
CHANNEL_DIR = "channel"
TMP_DIR = "tmp"
CHUNK = 1 << 20
BATCH_BYTES = 512 << 20
RESTORE_TMP_SUFFIX = ".pkgcache-tmp"
# Fields of repodata_record.json that a channel's repodata.json does not repeat per package.
NOT_IN_REPODATA = ("fn", "url", "channel")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HOST_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


class BackupError(Exception):
    """A run cannot go on: bad ``dest``, unreadable manifest, full disk.  The message says where."""


def _oserror(what, path, exc):
    if exc.errno == errno.ENOSPC:
        return BackupError("%s %s: no space left on device (nothing partial was kept)" % (what, path))
    if exc.errno == errno.EROFS:
        return BackupError("%s %s: read-only filesystem" % (what, path))
    return BackupError("%s %s: %s" % (what, path, exc.strerror or exc))


# -- reading and hashing -------------------------------------------------------------------------

class WriteFailed(Exception):
    """Writing the copy failed (as opposed to reading the source): the run must stop."""

    def __init__(self, error):
        super(WriteFailed, self).__init__(str(error))
        self.error = error


def _write_all(fd, view):
    while len(view):
        view = view[os.write(fd, view):]


def hash_copy(src_path, dst_fd=None, want_md5=True, sync=True):
    """Hash ``src_path`` and, when ``dst_fd`` is given, copy it there, chunk by chunk.

    Each chunk is hashed from a read and copied by the kernel (``copy_file_range``, what ``cp``
    does) from the same just-read pages: about 2.5 times cheaper than writing the buffer back
    here.  A source changed while being read shows in its size or mtime (compare ``before`` and
    ``after``).  Where the kernel cannot copy (old kernels across filesystems) the hashed buffer is
    written instead.
    The source is opened without following a final symlink and must be a regular file, so a
    symlink swapped into a user's cache cannot make root copy some other file into the store.
    The copy is fsynced when ``sync``; a failure to write it raises :class:`WriteFailed`.
    Returns ``(size, sha256, md5 or None, fstat before, fstat after)``.
    """
    fd = os.open(src_path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", src_path)
        sha, md5 = hashlib.sha256(), (hashlib.md5() if want_md5 else None)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        size = 0
        kernel_copy = dst_fd is not None and hasattr(os, "copy_file_range")
        while True:
            count = os.readv(fd, [buf])
            if not count:
                break
            chunk = view[:count]
            sha.update(chunk)
            if md5 is not None:
                md5.update(chunk)
            if dst_fd is not None:
                kernel_copy = _copy_chunk(fd, dst_fd, size, chunk, kernel_copy)
            size += count
        after = os.fstat(fd)
        if dst_fd is not None and sync:
            try:
                os.fsync(dst_fd)
            except OSError as exc:
                raise WriteFailed(exc)
    finally:
        os.close(fd)
    return size, sha.hexdigest(), md5.hexdigest() if md5 is not None else None, before, after


# copy_file_range errors that mean "not here", not "failed": fall back to writing the buffer.
_NO_KERNEL_COPY = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)


def _copy_chunk(src_fd, dst_fd, offset, chunk, kernel_copy):
    """Put ``chunk`` (read from ``src_fd`` at ``offset``) at ``offset`` of ``dst_fd``; returns
    whether the kernel copy is still usable."""
    done = 0
    try:
        while kernel_copy and done < len(chunk):
            try:
                copied = os.copy_file_range(src_fd, dst_fd, len(chunk) - done, offset + done, offset + done)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                kernel_copy = False
                break
            if not copied:  # the source shrank: the size/mtime check rejects the file
                return kernel_copy
            done += copied
        while done < len(chunk):
            done += os.pwrite(dst_fd, chunk[done:], offset + done)
    except OSError as exc:
        raise WriteFailed(exc)
    return kernel_copy


def read_record(cache_path, fn):
    """``<cache>/<dist>/info/repodata_record.json`` of a tarball's extracted package, or None."""
    path = os.path.join(cache_path, strip_tarball_suffix(fn), "info", "repodata_record.json")
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except (OSError, IOError):
        return None, None
    except ValueError as exc:
        return None, "%s: unreadable (%s); tarball not verified against it" % (path, exc)
    if not isinstance(data, dict):
        return None, "%s: not a JSON object; tarball not verified against it" % path
    return data, None


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


# -- the backup directory ------------------------------------------------------------------------

class Manifest(object):
    """One run's record of a host's tarballs: ``{"format", "host", "created", "entries": [...]}``."""

    def __init__(self, host, created, entries, path=None):
        self.host = host
        self.created = created
        self.entries = entries
        self.path = path

    @property
    def by_source(self):
        return dict((e["source"], e) for e in self.entries)

    def as_dict(self):
        return {"format": FORMAT, "host": self.host, "created": self.created, "entries": self.entries}

    @classmethod
    def load(cls, path):
        """Read and check a manifest; anything malformed is a :class:`BackupError` naming it."""
        try:
            with open(path, "rb") as handle:
                data = json.loads(handle.read().decode("utf-8"))
        except (OSError, IOError) as exc:
            raise _oserror("cannot read manifest", path, exc)
        except ValueError as exc:
            raise BackupError("manifest %s does not parse: %s" % (path, exc))
        problem = _manifest_problem(data)
        if problem:
            raise BackupError("manifest %s is not a backup manifest: %s" % (path, problem))
        return cls(data["host"], data["created"], data["entries"], path)


def _manifest_problem(data):
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        return "no entries list"
    if data.get("format") != FORMAT:
        return "format %r, expected %d" % (data.get("format"), FORMAT)
    for index, entry in enumerate(data["entries"]):
        if not isinstance(entry, dict):
            return "entry %d is not an object" % index
        if not _SHA256.match(str(entry.get("sha256"))) or not isinstance(entry.get("size"), int):
            return "entry %d has no valid sha256 and size" % index
        if not entry.get("fn") or "/" in entry["fn"] or not isinstance(entry.get("source"), str):
            return "entry %d has no valid fn and source" % index
    return None


def utc_stamp(now=None):
    """Sortable, filename-safe UTC time with microseconds: ``20261121T134500.123456Z``."""
    now = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + (".%06dZ" % int((now % 1) * 1e6))


class Store(object):
    """A backup directory as seen by one host (``host_id`` names its manifests and temp files)."""

    def __init__(self, dest, host_id):
        if not _HOST_ID.match(host_id or "") or host_id in (".", ".."):
            raise BackupError("host_id %r must be a plain name (letters, digits, '.', '_', '-')" % host_id)
        self.dest = os.path.normpath(dest)
        self.host_id = host_id
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._dirty_dirs = set()

    def path(self, *parts):
        return os.path.join(self.dest, *parts)

    def object_path(self, sha256):
        return self.path(STORE_DIR, sha256[:2], sha256)

    def object_size(self, sha256):
        """Size of the stored object, or None when absent (or not a regular file)."""
        try:
            st = os.lstat(self.object_path(sha256))
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def has(self, sha256, size):
        return self.object_size(sha256) == size

    # -- checks and preparation --

    def check(self, for_writing, forbidden=()):
        """Refuse a ``dest`` that is missing, not a directory, read-only (when writing), or inside a
        cache or environment (``forbidden``: ``(what, path)`` pairs)."""
        real = os.path.realpath(self.dest)
        for what, path in forbidden:
            inner = os.path.realpath(path)
            if real == inner or real.startswith(inner.rstrip("/") + "/"):
                raise BackupError("dest %s is inside the %s %s; back up to a directory outside it" % (
                    self.dest, what, path))
        if not os.path.isdir(self.dest):
            raise BackupError("dest %s does not exist or is not a directory (create it or mount the "
                              "backup filesystem first)" % self.dest)
        if for_writing and (os.statvfs(self.dest).f_flag & os.ST_RDONLY or not os.access(self.dest, os.W_OK)):
            raise BackupError("dest %s is not writable (read-only mount or permissions)" % self.dest)

    def prepare(self):
        """Create the directories a writing run needs and remove this host's dead temp files."""
        for parts in ((STORE_DIR,), (TMP_DIR,), (MANIFEST_DIR, self.host_id)):
            path = self.path(*parts)
            try:
                os.makedirs(path, 0o755)
            except OSError as exc:
                if exc.errno != errno.EEXIST or not os.path.isdir(path):
                    raise _oserror("cannot create", path, exc)
        return sweep_dead_temps(self.path(TMP_DIR), self.host_id + ".")

    def temp(self):
        """A new exclusive temp file in ``tmp/``: ``(fd, path)``."""
        with self._seq_lock:
            self._seq += 1
            name = "%s.%d.%d" % (self.host_id, os.getpid(), self._seq)
        path = self.path(TMP_DIR, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise _oserror("cannot create temp file", path, exc)
        return fd, path

    def commit(self, temp_path, sha256):
        """Move a complete, fsynced temp file to its object name; False when the content was
        already there (the temp file is dropped)."""
        final = self.object_path(sha256)
        shard = os.path.dirname(final)
        try:
            if os.path.exists(final):
                os.unlink(temp_path)
                return False
            try:
                os.mkdir(shard, 0o755)
                self._dirty_dirs.add(os.path.dirname(shard))
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
            os.rename(temp_path, final)
            self._dirty_dirs.add(shard)
        except OSError as exc:
            _unlink_quiet(temp_path)
            raise _oserror("cannot store", final, exc)
        return True

    def sync(self):
        """Make the renames of this run durable: one ``syncfs``, else fsync every directory
        that gained a name."""
        if self._dirty_dirs and not sync_filesystem(self.dest):
            for path in sorted(self._dirty_dirs):
                fsync_dir(path)
        self._dirty_dirs.clear()

    def write_json(self, relpath, data):
        """Write JSON atomically (temp, fsync, rename, fsync dir); returns the final path."""
        final = self.path(relpath)
        fd, temp = self.temp()
        try:
            _write_all(fd, memoryview(json_text(data).encode("utf-8")))
            os.fsync(fd)
            os.close(fd)
            fd = None
            os.rename(temp, final)
        except OSError as exc:
            raise _oserror("cannot write", final, exc)
        finally:
            if fd is not None:
                os.close(fd)
            _unlink_quiet(temp)
        fsync_dir(os.path.dirname(final))
        return final

    # -- manifests --

    def manifest_paths(self, host=None):
        directory = self.path(MANIFEST_DIR, host or self.host_id)
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(".json") and not n.startswith("."))
        except OSError:
            return []
        return [os.path.join(directory, n) for n in names]

    def hosts(self):
        try:
            return sorted(n for n in os.listdir(self.path(MANIFEST_DIR)) if os.path.isdir(self.path(MANIFEST_DIR, n)))
        except OSError:
            return []

    def latest(self, host=None):
        paths = self.manifest_paths(host)
        return Manifest.load(paths[-1]) if paths else None

    def resolve(self, spec):
        """A manifest by path, by name under this host's manifests, or this host's latest (None)."""
        if not spec:
            found = self.latest()
            if found is None:
                raise BackupError("no manifest for host %s under %s" % (self.host_id, self.path(MANIFEST_DIR)))
            return found
        if os.path.isabs(spec):
            return Manifest.load(spec)
        name = spec if spec.endswith(".json") else spec + ".json"
        return Manifest.load(self.path(MANIFEST_DIR, self.host_id, name))


def json_text(data):
    """JSON text of ``data``, sorted keys, an object's keys one per line and a list's elements one per
    line (a manifest reads as one entry per line).  The C encoder does the values: ``indent``
    would switch to the pure-Python encoder, several times slower on a manifest of thousands."""
    if not isinstance(data, dict):
        return json.dumps(data, sort_keys=True) + "\n"
    lines = []
    for key in sorted(data):
        value = data[key]
        if isinstance(value, list) and value:
            text = "[\n%s\n ]" % ",\n".join("  " + json.dumps(v, sort_keys=True) for v in value)
        else:
            text = json.dumps(value, sort_keys=True)
        lines.append(" %s: %s" % (json.dumps(key), text))
    return "{\n%s\n}\n" % ",\n".join(lines)


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, AttributeError):
        return None


def sync_filesystem(path):
    """``syncfs(2)`` on the filesystem holding ``path``: every dirty page and name on it reaches
    the disk in one call.  False when the C library lacks it (the caller then fsyncs file by
    file); an I/O error (disk full at writeback) raises OSError."""
    syncfs = getattr(_libc(), "syncfs", None)
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
    finally:
        os.close(fd)
    return True


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quiet(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def sweep_dead_temps(directory, prefix, suffix="", dir_fd=None):
    """Remove ``<prefix><pid>.*<suffix>`` temp files whose writer (on this host) is gone."""
    removed = []
    try:
        names = os.listdir(directory if dir_fd is None else dir_fd)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            try:
                os.unlink(name if dir_fd is not None else os.path.join(directory, name), dir_fd=dir_fd)
                removed.append(os.path.join(directory, name))
            except OSError:
                pass
    return removed


def run_parallel(func, items, workers):
    """``[func(item)]`` on a thread pool (hashing and I/O release the GIL); the first exception
    cancels what has not started and is raised once the running ones finish."""
    if workers <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(func, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


# -- backup ----------------------------------------------------------------------------------------

class Item(object):
    """One tarball of a selected cache and what the run does with it.

    ``action``: ``unchanged`` (last manifest still true: no read), ``read`` (planned: its record,
    read by a worker just before the tarball, decides between) ``verify`` (content already in the
    store: hash only) and ``copy`` (hash while copying), ``failed``.
    """

    __slots__ = ("cache", "fn", "path", "size", "mtime_ns", "ctime_ns", "ino", "record", "url", "action", "entry",
                 "reason", "copied", "temp")

    def __init__(self, cache, fn, path, st):
        self.cache, self.fn, self.path = cache, fn, path
        self.size, self.mtime_ns, self.ctime_ns, self.ino = st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
        self.record, self.url = None, None
        self.action, self.entry, self.reason, self.copied = None, None, None, False
        self.temp = None  # written, not yet fsynced and renamed

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
        return result


class BackupPlan(object):
    def __init__(self, store, last, warnings):
        self.store = store
        self.last = last
        self.warnings = warnings
        self.items = []
        self.carried = []  # manifest entries of pruned tarballs still absent from their cache

    def of(self, *actions):
        return [i for i in self.items if i.action in actions]

    def entries(self):
        entries = [i.entry for i in self.items if i.entry is not None] + self.carried
        return sorted(entries, key=lambda e: e["source"])

    def manifest_changed(self):
        """A new manifest is due when what it would say differs from the last one (compared as
        the JSON values they are; no need to encode them)."""
        if self.last is None:
            return bool(self.entries())
        return self.entries() != sorted(self.last.entries, key=lambda e: e["source"])


def plan_backup(caches, store, warnings):
    """Tell unchanged tarballs from those to read, from their lstat alone; ``urls.txt`` is read
    only for a cache with tarballs to read, their records by :func:`execute_backup`."""
    last = store.latest()
    previous = last.by_source if last else {}
    plan = BackupPlan(store, last, warnings)
    seen = set()
    for cache in caches:
        urls = None
        for tarball in cache.tarballs:
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
            if _unchanged(item, previous.get(path), store):
                continue
            if urls is None:
                urls = read_urls(cache.path)
            item.action, item.url = "read", urls.get(tarball.relpath)
    for source, entry in previous.items():
        if entry.get("pruned") and source not in seen and not os.path.lexists(source):
            plan.carried.append(entry)
    return plan


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
    item.action = "verify" if algorithm == "sha256" and store.has(digest, item.size) else "copy"
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
                _unlink_quiet(item.temp)
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
            raise _oserror("cannot write the backup of %s to" % item.path, temp, exc.error)
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
        if temp is None and item.action == "copy":
            item.copied = not store.has(sha256, size)
        item.temp, temp = temp, None
    finally:
        if temp is not None:
            _unlink_quiet(temp)


def _flush(store, item):
    try:
        return sync_filesystem(store.path(TMP_DIR))
    except OSError as exc:
        raise _oserror("cannot write the backup of %s to" % item.path, store.path(TMP_DIR), exc)


def _commit(item, store, flushed):
    """Give a written temp file its object name, after an fsync unless its batch was flushed."""
    if not flushed:
        try:
            fd = os.open(item.temp, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _oserror("cannot write the backup of %s to" % item.path, item.temp, exc)
    temp, item.temp = item.temp, None
    item.copied = store.commit(temp, item.entry["sha256"])


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
    manifest = Manifest(store.host_id, created, plan.entries())
    return store.write_json(os.path.join(MANIFEST_DIR, store.host_id, created + ".json"), manifest.as_dict())


def verify_object(store, sha256, size):
    """Re-hash a stored object: None when it is intact, else what is wrong."""
    path = store.object_path(sha256)
    try:
        got_size, got, _md5, _b, _a = hash_copy(path, want_md5=False)
    except OSError as exc:
        return "missing" if exc.errno == errno.ENOENT else "unreadable: %s" % (exc.strerror or exc)
    if got != sha256 or (size is not None and got_size != size):
        return "corrupt: content hashes to %s (%d bytes)" % (got, got_size)
    return None


def plan_prune(plan, workers=2):
    """Items whose tarball may leave its cache: stored in this run's manifest and the stored
    object re-hashed intact.  Returns ``(items, failures)``."""
    candidates = [i for i in plan.items if i.entry is not None]
    problems = run_parallel(lambda i: verify_object(plan.store, i.entry["sha256"], i.size), candidates, workers)
    chosen, failures = [], []
    for item, problem in zip(candidates, problems):
        if problem:
            failures.append({"source": item.path, "reason": "not pruned: stored object %s" % problem})
        else:
            chosen.append(item)
    return chosen, failures


def prune(items):
    """Remove backed-up tarballs through the cache's lock and symlink-proof removal."""
    removed, errors = [], []
    by_cache = {}
    for item in items:
        by_cache.setdefault(item.cache.path, []).append(item)
    for cache_path, cache_items in sorted(by_cache.items()):
        try:
            with _removal.CacheDir(cache_path) as root:
                for item in cache_items:
                    if root.remove(item.fn):
                        removed.append(item.path)
        except (OSError, _removal.RemovalError) as exc:
            errors.append("%s: %s" % (cache_path, exc))
    return removed, errors


class BackupRun(object):
    """What one ``state: present`` run did (or, in check mode, would do)."""

    def __init__(self, plan):
        self.plan = plan
        self.manifest = None
        self.prune_items = []
        self.pruned = []
        self.prune_failures = []
        self.channel = None
        self.channel_changed = False

    @property
    def copied(self):
        return [i for i in self.plan.items if i.copied]

    @property
    def changed(self):
        return bool(self.copied or self.plan.manifest_changed() or self.pruned or self.channel_changed)


def run_backup(store, caches, warnings, check_mode=False, workers=2, prune_source=False, channel=False):
    """Plan, read/copy, optionally prune, write the manifest, optionally refresh the channel.

    The manifest is written before any tarball leaves its cache, so a run killed while pruning
    still has every pruned tarball on record.
    """
    if not check_mode:
        store.prepare()
    run = BackupRun(execute_backup(plan_backup(caches, store, warnings), check_mode, workers))
    if prune_source:
        run.prune_items, run.prune_failures = plan_prune(run.plan, workers)
        for item in run.prune_items:
            item.entry["pruned"] = True
        run.pruned = [i.path for i in run.prune_items]
    if not check_mode:
        run.manifest = write_manifest(run.plan)
        if run.prune_items:
            run.pruned, errors = prune(run.prune_items)
            run.prune_failures.extend({"source": e, "reason": "prune failed"} for e in errors)
    if channel:
        run.channel_changed = refresh_channel(store, warnings, check_mode)
        run.channel = store.path(CHANNEL_DIR)
    return run


def refresh_channel(store, warnings, check_mode):
    """Bring the channel up to date with every host's latest manifest; True when it changed.

    Hosts sharing ``dest`` take turns (a flock on the channel directory), so each index written is
    computed from the manifests as they are at that moment and no two hosts interleave.
    """
    if check_mode:
        links, indexes = plan_channel(store, warnings)
        return bool(links or indexes)
    directory = store.path(CHANNEL_DIR)
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        with _removal.CacheDir(directory):
            links, indexes = plan_channel(store, warnings)
            write_channel(store, links, indexes)
    except OSError as exc:
        raise _oserror("cannot update the channel", directory, exc)
    except _removal.RemovalError as exc:
        raise BackupError(str(exc))
    return bool(links or indexes)


# -- channel -------------------------------------------------------------------------------------

def channel_index(store, warnings):
    """``{subdir: {fn: (entry, repodata fields)}}`` from every host's latest manifest.

    Entries without a repodata record cannot be described to a solver and are left out (warned).
    """
    index = {"noarch": {}}
    for host in store.hosts():
        manifest = store.latest(host)
        for entry in (manifest.entries if manifest else ()):
            record = entry.get("record")
            subdir = entry.get("subdir")
            if not record or not subdir:
                warnings.append("%s (%s): no repodata record; not in the channel" % (entry["fn"], host))
                continue
            packages = index.setdefault(subdir, {})
            known = packages.get(entry["fn"])
            if known is not None and known[0]["sha256"] != entry["sha256"]:
                warnings.append("%s/%s: two different files with this name; the channel keeps %s" % (
                    subdir, entry["fn"], known[0]["sha256"]))
                continue
            fields = dict((k, v) for k, v in record.items() if k not in NOT_IN_REPODATA)
            fields.update(md5=entry["md5"], sha256=entry["sha256"], size=entry["size"])
            packages[entry["fn"]] = (entry, fields)
    return index


def repodata(subdir, packages):
    data = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": {}, "repodata_version": 1}
    for fn, (_entry, fields) in sorted(packages.items()):
        data["packages.conda" if fn.endswith(".conda") else "packages"][fn] = fields
    return data


def plan_channel(store, warnings):
    """What the channel lacks: ``(links, indexes)`` with links ``(object, channel path)`` and
    indexes ``(relpath, data)`` whose content differs from what is on disk."""
    links, indexes = [], []
    for subdir, packages in sorted(channel_index(store, warnings).items()):
        for fn, (entry, _fields) in sorted(packages.items()):
            target = store.path(CHANNEL_DIR, subdir, fn)
            source = store.object_path(entry["sha256"])
            if not _same_file(source, target):
                links.append((source, target))
        relpath = os.path.join(CHANNEL_DIR, subdir, "repodata.json")
        data = repodata(subdir, packages)
        if _load_json(store.path(relpath)) != data:
            indexes.append((relpath, data))
    return links, indexes


def _same_file(one, other):
    try:
        a, b = os.stat(one), os.lstat(other)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _load_json(path):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except (OSError, IOError, ValueError):
        return None


def write_channel(store, links, indexes):
    """Hard-link (else copy) store objects into the channel, then write the indexes (under the
    channel lock: see :func:`refresh_channel`)."""
    for source, target in links:
        try:
            if not os.path.isdir(os.path.dirname(target)):
                os.makedirs(os.path.dirname(target), 0o755)
            _place(store, source, target)
        except OSError as exc:
            raise _oserror("cannot place channel file", target, exc)
        except WriteFailed as exc:
            raise _oserror("cannot place channel file", target, exc.error)
    for relpath, data in indexes:
        directory = store.path(os.path.dirname(relpath))
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        store.write_json(relpath, data)


def _place(store, source, target):
    """``target`` becomes a hard link of ``source`` (a copy across filesystems), atomically."""
    fd, temp = store.temp()
    try:
        os.close(fd)
        os.unlink(temp)  # the name stays reserved by its unique sequence number
        try:
            os.link(source, temp)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            try:
                hash_copy(source, fd, want_md5=False)
            finally:
                os.close(fd)
        os.rename(temp, target)
    finally:
        _unlink_quiet(temp)


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


def execute_restore(store, items, cache_path, workers=2):
    """Copy objects into the cache under its lock, fd-relative and symlink-proof; append URLs.

    Returns the URLs added to ``urls.txt``.
    """
    if not os.path.isdir(cache_path):
        try:
            os.makedirs(cache_path, 0o755)
        except OSError as exc:
            raise _oserror("cannot create cache", cache_path, exc)
    try:
        cache = _removal.CacheDir(cache_path)
    except (OSError, _removal.RemovalError) as exc:
        raise BackupError("cannot open cache %s: %s" % (cache_path, exc))
    with cache:
        owner = os.fstat(cache.fd)
        sweep_dead_temps(cache.path, ".", RESTORE_TMP_SUFFIX, dir_fd=cache.fd)
        work = [i for i in items if i.action in ("restore", "replace")]
        run_parallel(lambda item: _restore_one(store, item, cache.fd, owner), work, workers)
        os.fsync(cache.fd)
        urls = [i.entry["url"] for i in items if i.action in ("present", "restore", "replace") and i.entry.get("url")]
        return _append_urls(cache.fd, urls, owner)


def _restore_one(store, item, dir_fd, owner):
    entry = item.entry
    temp = ".%d.%s%s" % (os.getpid(), entry["fn"], RESTORE_TMP_SUFFIX)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(temp, flags, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        raise _oserror("cannot create temp file in", item.target, exc)
    keep = False
    try:
        try:
            size, sha256, _md5, _b, _a = hash_copy(store.object_path(entry["sha256"]), fd, want_md5=False)
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
        raise _oserror("cannot restore", item.target, exc.error)
    except OSError as exc:
        raise _oserror("cannot restore", item.target, exc)
    finally:
        if not keep:
            try:
                os.unlink(temp, dir_fd=dir_fd)
            except OSError:
                pass


def _append_urls(dir_fd, urls, owner):
    """Add the URLs ``urls.txt`` lacks (creating it makes the cache conda-writable)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
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
            _write_all(fd, memoryview((prefix + "".join(u + "\n" for u in added)).encode("utf-8")))
            os.fsync(fd)
        if os.geteuid() == 0:
            os.fchown(fd, owner.st_uid, owner.st_gid)
    finally:
        os.close(fd)
    return added


def run_restore(store, manifest, cache_path, warnings, check_mode=False, workers=2, from_caches=None):
    """Plan and (unless ``check_mode``) restore; ``(items, urls added, record mismatches)``."""
    items = plan_restore(store, manifest, cache_path, warnings, workers, from_caches)
    urls = [] if check_mode else execute_restore(store, items, cache_path, workers)
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
