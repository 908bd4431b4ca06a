# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup directory: a content-addressed store of conda package tarballs and the manifests
that say what each host's caches held.

Layout of a backup directory (``dest``), shared by any number of hosts::

    store/sha256/<aa>/<sha256>           each distinct tarball once, named by its content
    manifests/<host>/<UTC stamp>.json    one per run that changed something: what the caches held
    channel/<subdir>/{repodata.json,<fn>} optional: a file:// channel conda can install from
    tmp/<host>.<pid>.<n>                 files being written; renamed into the store when complete

Every file reaches its final name by ``rename`` once its data is on disk (``syncfs`` per batch, or
``fsync``): a killed or failing run never leaves a partial file under a final name, and the store
only ever gains complete objects.  A damaged object (see :func:`object_damage`) is replaced the
same way, by a verified copy renamed over it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import re
import stat
import threading
import time

from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import hash_copy
from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import (
    fsync_dir, sweep_dead_temps, sync_filesystem, unlink_quiet, write_atomic)
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import (
    CREATE_FLAGS, directory_problem, existing_ancestor, inside)
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import strip_tarball_suffix

FORMAT = 2  # 2 added "environments"; format 1 manifests are read as recording none
READABLE_FORMATS = (1, 2)
STORE_DIR = os.path.join("store", "sha256")
MANIFEST_DIR = "manifests"
CHANNEL_DIR = "channel"
TMP_DIR = "tmp"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HOST_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


class BackupError(Exception):
    """A run cannot go on: bad ``dest``, unreadable manifest, full disk.  The message says where."""


def backup_error(what, path, exc):
    if exc.errno == errno.ENOSPC:
        return BackupError("%s %s: no space left on device (nothing partial was kept)" % (what, path))
    if exc.errno == errno.EROFS:
        return BackupError("%s %s: read-only filesystem" % (what, path))
    return BackupError("%s %s: %s" % (what, path, exc.strerror or exc))


# -- what a cache says about a tarball ------------------------------------------------------------

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


# -- the backup directory ------------------------------------------------------------------------

class Manifest(object):
    """One run's record of a host's tarballs: ``{"format", "host", "created", "entries": [...],
    "environments": [...]}`` (environments: see ``conda_backup_envs``), and ``"repaired": [...]``
    when the run replaced damaged store objects (``sha256``, ``size``, ``source`` it was repaired
    from, ``damage``)."""

    def __init__(self, host, created, entries, path=None, repaired=(), environments=()):
        self.host = host
        self.created = created
        self.entries = entries
        self.path = path
        self.repaired = list(repaired)
        self.environments = list(environments)

    @property
    def by_source(self):
        return dict((e["source"], e) for e in self.entries)

    def as_dict(self):
        data = {"format": FORMAT, "host": self.host, "created": self.created, "entries": self.entries,
                "environments": self.environments}
        if self.repaired:
            data["repaired"] = self.repaired
        return data

    @classmethod
    def load(cls, path):
        """Read and check a manifest; anything malformed is a :class:`BackupError` naming it."""
        try:
            with open(path, "rb") as handle:
                data = json.loads(handle.read().decode("utf-8"))
        except (OSError, IOError) as exc:
            raise backup_error("cannot read manifest", path, exc)
        except ValueError as exc:
            raise BackupError("manifest %s does not parse: %s" % (path, exc))
        problem = _manifest_problem(data)
        if problem:
            raise BackupError("manifest %s is not a backup manifest: %s" % (path, problem))
        return cls(data["host"], data["created"], data["entries"], path, data.get("repaired") or (),
                   data.get("environments") or ())


def _manifest_problem(data):
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        return "no entries list"
    if data.get("format") not in READABLE_FORMATS:
        return "format %r, expected one of %s" % (data.get("format"), ", ".join(str(f) for f in READABLE_FORMATS))
    for index, entry in enumerate(data["entries"]):
        if not isinstance(entry, dict):
            return "entry %d is not an object" % index
        if not _SHA256.match(str(entry.get("sha256"))) or not isinstance(entry.get("size"), int):
            return "entry %d has no valid sha256 and size" % index
        if not entry.get("fn") or "/" in entry["fn"] or not isinstance(entry.get("source"), str):
            return "entry %d has no valid fn and source" % index
    if not isinstance(data.get("repaired", []), list):
        return "repaired is not a list"
    return _environments_problem(data.get("environments", []))


def _environments_problem(environments):
    if not isinstance(environments, list):
        return "environments is not a list"
    for index, environment in enumerate(environments):
        if not isinstance(environment, dict) or not isinstance(environment.get("prefix"), str):
            return "environment %d has no prefix" % index
        for key in ("explicit", "missing", "unreadable", "requested"):
            if not isinstance(environment.get(key), list):
                return "environment %d has no %s list" % (index, key)
        for package in environment["explicit"]:
            if not isinstance(package, dict) or not package.get("fn") or "/" in str(package["fn"]):
                return "environment %d lists a package without a valid fn" % index
            if package["fn"] not in environment["missing"] and not _SHA256.match(str(package.get("sha256"))):
                return "environment %d lists %s without a valid sha256" % (index, package["fn"])
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
        """Refuse a ``dest`` that is missing, not a directory, not writable (when writing: read-only,
        a pseudo-filesystem, permissions), or inside a cache or environment (``forbidden``:
        ``(what, path)`` pairs)."""
        real = os.path.realpath(self.dest)
        for what, path in forbidden:
            if inside(real, os.path.realpath(path)):
                raise BackupError("dest %s is inside the %s %s; back up to a directory outside it" % (
                    self.dest, what, path))
        if not os.path.lexists(self.dest) and os.path.isdir(existing_ancestor(self.dest)):
            raise BackupError("dest %s does not exist (create it or mount the backup filesystem first)" % self.dest)
        # A file where a directory belongs, a pseudo-filesystem (sysfs, proc) or a read-only mount.
        problem = directory_problem(self.dest) if for_writing or not os.path.isdir(self.dest) else None
        if problem:
            raise BackupError("dest %s is not usable: %s" % (self.dest, problem))

    def prepare(self):
        """Create the directories a writing run needs and remove this host's dead temp files."""
        for parts in ((STORE_DIR,), (TMP_DIR,), (MANIFEST_DIR, self.host_id)):
            path = self.path(*parts)
            try:
                os.makedirs(path, 0o755)
            except OSError as exc:
                if exc.errno != errno.EEXIST or not os.path.isdir(path):
                    raise backup_error("cannot create", path, exc)
        return sweep_dead_temps(self.path(TMP_DIR), self.host_id + ".")

    def temp(self):
        """A new exclusive temp file in ``tmp/``: ``(fd, path)``."""
        with self._seq_lock:
            self._seq += 1
            name = "%s.%d.%d" % (self.host_id, os.getpid(), self._seq)
        path = self.path(TMP_DIR, name)
        try:
            fd = os.open(path, CREATE_FLAGS, 0o644)
        except OSError as exc:
            raise backup_error("cannot create temp file", path, exc)
        return fd, path

    def commit(self, temp_path, sha256, replace=False):
        """Move a complete, fsynced temp file to its object name; False when the content was
        already there (the temp file is dropped).  With ``replace`` (the object there is damaged)
        the rename puts it in place of the old one: readers see the old file or the new, whole."""
        final = self.object_path(sha256)
        shard = os.path.dirname(final)
        try:
            if not replace and os.path.lexists(final):
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
            unlink_quiet(temp_path)
            raise backup_error("cannot store", final, exc)
        return True

    def sync(self):
        """Make the renames of this run durable: one ``syncfs``, else fsync every directory
        that gained a name."""
        if self._dirty_dirs and not sync_filesystem(self.dest):
            for path in sorted(self._dirty_dirs):
                fsync_dir(path)
        self._dirty_dirs.clear()

    def write_json(self, relpath, data):
        """Write JSON atomically (temp file in ``tmp/``, fsync, rename, fsync dir); returns the
        final path."""
        final = self.path(relpath)
        try:
            return write_atomic(final, json_text(data), mode=None, keep_existing=False, temp=self.temp)
        except OSError as exc:
            raise backup_error("cannot write", final, exc)

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


def object_damage(store, sha256, size, rehash):
    """What is wrong with the stored object ``sha256`` that a run relies on to hold ``size`` bytes:
    None when it is intact, ``"missing"``, or the damage.  Its size is checked without reading it
    (a truncated or grown object is never trusted); an object of the right size is re-hashed only
    with ``rehash``, which costs a read of the whole object."""
    try:
        st = os.lstat(store.object_path(sha256))
    except OSError as exc:
        return "missing" if exc.errno == errno.ENOENT else "unreadable: %s" % (exc.strerror or exc)
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size != size:
        return "size %d, expected %d" % (st.st_size, size)
    return verify_object(store, sha256, size) if rehash else None


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
