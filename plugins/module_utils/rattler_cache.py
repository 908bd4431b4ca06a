# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pixi / rattler package caches: where they are, which environments use them, and what may go.

Location follows pixi's ``resolve_cache_root`` (pixi_config): ``PIXI_CACHE_DIR``, ``RATTLER_CACHE_DIR``,
``[cache] root`` of pixi's global config files, ``<cache dir>/pixi`` when it exists, else rattler's
``<cache dir>/rattler/cache``, where the cache dir is ``$XDG_CACHE_HOME`` or ``~/.cache``.  Per-kind
overrides and the network-filesystem redirect are not followed.  The
cache root holds kinds (``pkgs``, ``repodata``, ``run-exports``, ``exec``, and pixi's ``uv-cache``,
``conda-pypi-mapping``, ...); only ``pkgs`` is cleaned.

A package entry is ``pkgs/<name>-<version>-<build>[-<origin hash>]/`` with a sibling
``<entry>.lock`` (a big-endian u64 revision and optionally the archive's sha256, rattler_cache
``cache_lock.rs``).  An install holds ``pkgs/.cache.lock`` with ``flock`` (fs4, ``package_cache/
mod.rs`` ``acquire_global_lock``).

rattler links reflink first, so a file in a prefix has one link whatever it shares: whether an
entry is used comes only from the PrefixRecords (``conda-meta/*.json``: ``extracted_package_dir``,
``package_tarball_full_path``, ``link.source``) of the environments found -- pixi workspaces'
``.pixi/envs/*`` under the search roots, pixi global tools (``$PIXI_HOME/envs``, default
``~/.pixi/envs``), detached environments (``<cache root>/envs/*/envs/*``), the prefixes of
``~/.conda/environments.txt`` and prefixes named by the operator.
Extents an entry shares by reflink are counted from FIEMAP where the filesystem reports them, and
are never reclaimable.  What a cleanup removes is decided in ``rattler_clean``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import io
import json
import os
import posixpath
import re
import stat
import struct
import time

from ansible_collections.pkgcache.fleet.plugins.module_utils import cleanup, options
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import with_homes
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import ROOT, namer_of
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, filesystem, walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import READ_FLAGS, mount_of, open_regular
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import READ_TEXT, human_bytes
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_cache import (
    DEFAULT_SOURCES, Part, _absolute, _default_cache, config_home, expand_user, measure_cache)

TOOL = "rattler"
PKGS = "pkgs"
GLOBAL_LOCK = ".cache.lock"
ENTRY_LOCK_SUFFIX = ".lock"
TARBALL_SUFFIXES = (".conda", ".tar.bz2")
ENV_SOURCES = ("PIXI_CACHE_DIR", "RATTLER_CACHE_DIR")
REVISION = struct.Struct(">Q")
SHA256_LEN = 32
RECORD_KEYS = ("extracted_package_dir", "package_tarball_full_path")
# Filesystems whose files can share extents (reflinks); elsewhere FIEMAP is not asked.
REFLINK_FILESYSTEMS = ("xfs", "btrfs", "bcachefs", "ocfs2")

# linux/fs.h and linux/fiemap.h
FS_IOC_FIEMAP = 0xC020660B
FIEMAP_HEADER = struct.Struct("=QQLLLL")
FIEMAP_EXTENT = struct.Struct("=QQQQQLLLL")
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_SHARED = 0x2000
FIEMAP_BATCH = 64

CONFIG_FILE = "config.toml"
_TOML_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\- \t]+?)\s*\]\s*(?:#.*)?$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=\s*")
# A basic string without escapes, or a literal string.
_TOML_STRING = re.compile(r"""\s*(?:"([^"\\]*)"|'([^']*)')\s*(?:#.*)?$""")

DEFAULT_SEARCH_DEPTH = 4
DEFAULT_SEARCH_SECONDS = 60


# -- location ----------------------------------------------------------------------------------


def cache_location(home, env, warn, etc_dir="/etc"):
    """The cache root pixi would use for the user whose home is ``home``, as configured
    (``configured``), and from where (``source``: a variable, a config file, ``XDG_CACHE_HOME``
    or ``default``)."""
    for var in ENV_SOURCES:
        if env.get(var):
            return {"configured": _absolute(expand_user(env[var], home), home, var, warn), "source": var}
    for path in reversed(config_files(home, env, etc_dir)):
        root = read_cache_root(path, warn)
        if root is not None:
            return {"configured": _absolute(expand_user(root, home), home, "[cache] root in %s" % path, warn),
                    "source": path}
    path, source = _default_cache(home, env, "pixi")
    if not os.path.isdir(path):
        path, source = _default_cache(home, env, "rattler/cache")
    return {"configured": path, "source": source}


def config_files(home, env, etc_dir="/etc"):
    """pixi's global config files in load order, a later one winning (pixi_config
    ``load_global_with``): ``/etc/pixi/config.toml``, the user's config dir's ``pixi/config.toml``,
    ``$PIXI_HOME/config.toml``; ``PIXI_CONFIG_FILE`` alone when set, none with ``PIXI_NO_CONFIG``."""
    if (env.get("PIXI_NO_CONFIG") or "").lower() in ("1", "true", "yes", "on"):
        return []
    if env.get("PIXI_CONFIG_FILE"):
        return [expand_user(env["PIXI_CONFIG_FILE"], home)]
    return [posixpath.join(etc_dir, "pixi", CONFIG_FILE), posixpath.join(config_home(home, env), "pixi", CONFIG_FILE),
            posixpath.join(pixi_home(home, env), CONFIG_FILE)]


def read_cache_root(path, warn):
    """``root`` of the ``[cache]`` table (or the dotted key ``cache.root``) of a pixi config file,
    or None.  Only this key is read, from a line of its own holding a TOML string; a value in any
    other form is warned about and ignored (pixi would still honour it)."""
    try:
        with io.open(open_regular(path, follow=True), **READ_TEXT) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    table, found = "", None
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("["):
            heading = _TOML_TABLE.match(line)  # an array of tables ([[...]]) is no table we read
            table = "".join(heading.group(1).split()) if heading else None
            continue
        key = _TOML_KEY.match(line)
        if not key or (table, "".join(key.group(1).split())) not in (("cache", "root"), ("", "cache.root")):
            continue
        value = _TOML_STRING.match(line, key.end())
        if value is None:
            warn("%s:%d: [cache] root is not a plain TOML string; ignored here" % (path, number))
            continue
        found = value.group(1) if value.group(1) is not None else value.group(2)
    return found


def pixi_home(home, env):
    """``$PIXI_HOME`` or ``~/.pixi``: where pixi global keeps its tools' environments."""
    value = expand_user(env.get("PIXI_HOME") or "", home)
    return value if posixpath.isabs(value) else posixpath.join(home, ".pixi")


# -- environments ------------------------------------------------------------------------------


class Search(object):
    """Where environments are looked for: the search roots (None: every user's home), how deep
    below a root a workspace may sit, how long the search may take, extra prefixes."""

    def __init__(self, roots=None, depth=DEFAULT_SEARCH_DEPTH, seconds=DEFAULT_SEARCH_SECONDS, prefixes=()):
        self.roots = roots
        self.depth = depth
        self.seconds = seconds
        self.prefixes = list(prefixes)

    @classmethod
    def from_options(cls, params):
        for name in ("search_depth", "search_seconds"):
            if params[name] < 0:
                raise options.OptionError("%s must not be negative" % name)
        for path in (params["search_roots"] or []) + params["prefixes"]:
            if not posixpath.isabs(path):
                raise options.OptionError("%r is not an absolute path" % path)
        return cls(params["search_roots"] or None, params["search_depth"], params["search_seconds"], params["prefixes"])


# The options of the search (doc fragment pkgcache.fleet.rattler), read by Search.from_options.
SEARCH = dict(
    search_roots=dict(type="list", elements="str"),
    search_depth=dict(type="int", default=DEFAULT_SEARCH_DEPTH),
    search_seconds=dict(type="int", default=DEFAULT_SEARCH_SECONDS),
    prefixes=dict(type="list", elements="str", default=[]),
)


class Environments(object):
    """The prefixes found and the cache paths their records name; ``incomplete`` says why some
    references may be missing (then nothing may be called unused)."""

    def __init__(self):
        self.prefixes = []
        self.referenced = {}  # path named by a record -> [prefixes]
        self.incomplete = []
        self._real_dirs = {}

    def add_prefix(self, prefix):
        meta = posixpath.join(prefix, "conda-meta")
        if prefix in self.prefixes or not os.path.isdir(meta):
            return
        self.prefixes.append(prefix)
        try:
            names = sorted(n for n in os.listdir(meta) if n.endswith(".json"))
        except OSError as exc:
            self.incomplete.append("cannot list %s: %s" % (meta, exc))
            return
        for name in names:
            path = posixpath.join(meta, name)
            try:
                with io.open(open_regular(path, follow=True), **READ_TEXT) as handle:
                    record = json.load(handle)
                named = [record.get(key) for key in RECORD_KEYS] + [(record.get("link") or {}).get("source")]
            except (OSError, ValueError, AttributeError) as exc:
                self.incomplete.append("cannot read the record %s: %s" % (path, " ".join(str(exc).split())))
                continue
            for value in named:
                if isinstance(value, str) and value:
                    for key in set((posixpath.normpath(value), self.real(value))):
                        self.referenced.setdefault(key, []).append(prefix)

    def real(self, path):
        """``path`` with its directory's symlinks resolved; the directory is the same cache for
        most records, so it is resolved once."""
        parent, name = posixpath.split(posixpath.normpath(path))
        if parent not in self._real_dirs:
            self._real_dirs[parent] = os.path.realpath(parent)
        return posixpath.join(self._real_dirs[parent], name)

    def users_of(self, path):
        """Prefixes whose records name ``path`` (the entry as found, or its real path)."""
        found = self.referenced.get(path, []) + self.referenced.get(self.real(path), [])
        return sorted(set(found))


def _workspaces(root, depth, deadline, found):
    """Prefixes ``<workspace>/.pixi/envs/<env>`` below ``root`` at most ``depth`` directories down;
    symlinks are not followed.  Returns why the search stopped short, or None."""
    stack = [(root, 0)]
    while stack:
        path, level = stack.pop()
        if time.time() > deadline:
            return "the search for pixi workspaces stopped at its time limit in %s" % root
        try:
            with os.scandir(path) as listing:
                dirs = sorted(e.name for e in listing if e.is_dir(follow_symlinks=False))
        except OSError as exc:
            if exc.errno == errno.ENOENT and path == root:
                return None
            return "cannot search %s: %s" % (path, " ".join(str(exc).split()))
        if ".pixi" in dirs:
            envs = posixpath.join(path, ".pixi", "envs")
            for name in _subdirs(envs):
                found.append(posixpath.join(envs, name))
        if level < depth:
            stack.extend((posixpath.join(path, name), level + 1) for name in reversed(dirs) if name != ".pixi")
    return None


def _subdirs(path):
    try:
        with os.scandir(path) as listing:
            return sorted(e.name for e in listing if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def _conda_registry(home):
    """Prefixes listed in a user's ``~/.conda/environments.txt`` (conda's and mamba's registry)."""
    try:
        with io.open(open_regular(posixpath.join(home, ".conda", "environments.txt"), follow=True), **READ_TEXT) as handle:
            return [line.strip() for line in handle if line.strip().startswith("/")]
    except OSError:
        return []


def find_environments(users, env, search, now=None):
    """:class:`Environments` of ``users`` as :class:`Search` says."""
    found = Environments()
    deadline = (time.time() if now is None else now) + search.seconds
    candidates = list(search.prefixes)
    roots = search.roots if search.roots is not None else [user.home for user in with_homes(users)]
    for user in users:
        envs = posixpath.join(pixi_home(user.home, env), "envs")
        candidates.extend(posixpath.join(envs, name) for name in _subdirs(envs))
        candidates.extend(_conda_registry(user.home))
        # pixi's detached-environments: <cache root>/envs/<workspace>-<hash>/envs/<env>
        detached = posixpath.join(cache_location(user.home, env, lambda message: None)["configured"], "envs")
        for workspace in _subdirs(detached):
            inner = posixpath.join(detached, workspace, "envs")
            candidates.extend(posixpath.join(inner, name) for name in _subdirs(inner))
    for root in roots:
        stopped = _workspaces(root, search.depth, deadline, candidates)
        if stopped:
            found.incomplete.append(stopped)
    for prefix in candidates:
        found.add_prefix(posixpath.normpath(prefix))
    return found


# -- the cache ---------------------------------------------------------------------------------


def read_entry_lock(path):
    """``(revision, sha256 hex or None)`` of an entry's ``.lock`` file, or None when it is absent,
    short or not a regular file (rattler treats those as an entry to validate again)."""
    try:
        fd = os.open(path, READ_FLAGS | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        data = handle.read(REVISION.size + SHA256_LEN)
    if len(data) < REVISION.size:
        return None
    sha256 = data[REVISION.size:].hex() if len(data) == REVISION.size + SHA256_LEN else None
    return REVISION.unpack(data[:REVISION.size])[0], sha256


def shared_extent_bytes(path):
    """Bytes of the regular file ``path`` in extents it shares with other files (FIEMAP's
    ``FIEMAP_EXTENT_SHARED``), or None when the filesystem does not say."""
    try:
        fd = os.open(path, READ_FLAGS | os.O_NONBLOCK)
    except OSError:
        return None
    shared, start = 0, 0
    try:
        while True:
            request = bytearray(FIEMAP_HEADER.size + FIEMAP_BATCH * FIEMAP_EXTENT.size)
            FIEMAP_HEADER.pack_into(request, 0, start, 0xFFFFFFFFFFFFFFFF - start, 0, 0, FIEMAP_BATCH, 0)
            try:
                fcntl.ioctl(fd, FS_IOC_FIEMAP, request, True)
            except (IOError, OSError):
                return None
            mapped = FIEMAP_HEADER.unpack_from(request, 0)[3]
            if not mapped:
                return shared
            for index in range(mapped):
                logical, _physical, length, _r1, _r2, flags = FIEMAP_EXTENT.unpack_from(
                    request, FIEMAP_HEADER.size + index * FIEMAP_EXTENT.size)[:6]
                if flags & FIEMAP_EXTENT_SHARED:
                    shared += length
                if flags & FIEMAP_EXTENT_LAST:
                    return shared
                start = logical + length
    finally:
        os.close(fd)


class Entry(object):
    """One package of ``pkgs/``: an extracted directory (with its ``.lock``) or an archive."""

    __slots__ = ("name", "path", "lock", "usage", "shared_known", "users")

    def __init__(self, name, path, lock):
        self.name = name
        self.path = path
        self.lock = lock  # the sibling .lock's name, when there is one
        self.usage = DiskUsage()
        self.shared_known = True
        self.users = []

    def measure(self, reflinks, on_error, see):
        """Account the entry and its ``.lock`` (``see(path, st)`` sees every entry too); with
        ``reflinks``, the shared extents of its files whose every link lies in the entry (a file
        linked from outside is not freed anyway)."""
        inodes = {}  # (st_dev, st_ino) -> [shared bytes, st_nlink, links seen]

        def on_entry(path, st):
            see(path, st)
            if not (reflinks and stat.S_ISREG(st.st_mode) and st.st_blocks):
                return
            seen = inodes.get((st.st_dev, st.st_ino))
            if seen is not None:
                seen[2] += 1
                return
            shared = shared_extent_bytes(path)
            if shared is None:
                self.shared_known = False
            else:
                inodes[(st.st_dev, st.st_ino)] = [min(shared, st.st_blocks * 512), st.st_nlink, 1]

        walk(self.path, self.usage, on_error=on_error, on_entry=on_entry)
        self.usage.shared += sum(shared for shared, nlink, seen in inodes.values() if seen >= nlink)
        if self.lock:
            lock = self.path + ENTRY_LOCK_SUFFIX
            st = os.lstat(lock)
            self.usage.add(st)
            see(lock, st)

    def as_dict(self):
        result = self.usage.as_dict()
        result.update(name=self.name, shared_bytes=self.usage.shared if self.shared_known else None,
                      lock=read_entry_lock(self.path + ENTRY_LOCK_SUFFIX) if self.lock else None,
                      used_by=self.users)
        if result["lock"] is not None:
            result["lock"] = dict(zip(("revision", "sha256"), result["lock"]))
        return result


def is_real_dir(path):
    """A directory, not a symlink to one: a cache's ``pkgs`` is never followed elsewhere."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def package_entries(pkgs, environments, warn):
    """``([Entry], Part)``: every package in ``pkgs``, measured, with the prefixes using it, and
    ``pkgs`` as a whole (its packages, their locks and everything else), from the same walk."""

    def on_error(where, exc):
        warn("cannot read %s: %s" % (where, " ".join(str(exc).split())))

    found = mount_of(pkgs)
    reflinks = found is not None and found[1] in REFLINK_FILESYSTEMS
    whole = Part()
    whole.usage.add(os.lstat(pkgs))
    with os.scandir(pkgs) as listing:
        children = dict((e.name, e.is_dir(follow_symlinks=False)) for e in listing)
    entries, locks = [], set()
    for name in sorted(children):
        is_dir = children[name]
        if name.startswith(".") or not (is_dir or name.endswith(TARBALL_SUFFIXES)):
            continue
        lock = name + ENTRY_LOCK_SUFFIX if is_dir and children.get(name + ENTRY_LOCK_SUFFIX) is False else None
        entry = Entry(name, posixpath.join(pkgs, name), lock)
        entry.measure(reflinks, on_error, whole.see)
        whole.usage.update(entry.usage)
        entry.users = environments.users_of(entry.path)
        entries.append(entry)
        locks.add(lock)
    for name in sorted(set(children) - set(e.name for e in entries) - locks):
        walk(posixpath.join(pkgs, name), whole.usage, on_error=on_error, on_entry=whole.see)
    return entries, whole


def _namer(source, user, homes):
    """Whose word a cache root is: the operator's (root's) for a variable of the module's
    environment, the writer's for a config file, the user's for a default location."""
    if source in ENV_SOURCES:
        return ROOT
    if source in DEFAULT_SOURCES:
        return user.uid
    return namer_of(source, homes)


def locate(users, env, warn, locations=None):
    """``[(root, [users], [routes])]`` of the existing cache roots, each once; ``locations``
    (a dict) receives each user's :func:`cache_location`."""
    found, homes = {}, [(user.uid, user.home) for user in users]
    for user in users:
        location = cache_location(user.home, env, warn)
        if locations is not None:
            locations[user.name] = dict(location, uid=user.uid, home=user.home)
        owners, routes = found.setdefault(os.path.realpath(location["configured"]), ([], []))
        owners.append(user)
        route = (location["configured"], _namer(location["source"], user, homes))
        if route not in routes:
            routes.append(route)
    return [(path, owners, routes) for path, (owners, routes) in sorted(found.items()) if os.path.isdir(path)]


# -- facts -------------------------------------------------------------------------------------


def gather_facts(users, env, search, warn, now=None, list_packages=True, environments=None):
    """``ansible_facts.rattler_cache``: per cache root its kinds with bytes, its packages counted
    (and with ``list_packages`` listed, with the environments using them); ``totals`` count each
    inode once.  ``environments``: what :func:`find_environments` found, when already searched."""
    now = time.time() if now is None else now
    if environments is None:
        environments = find_environments(users, env, search, now)
    for reason in environments.incomplete:
        warn(reason)
    caches, total, locations = {}, Part(), {}
    for root, owners, _routes in locate(users, env, warn, locations):
        pkgs = posixpath.join(root, PKGS)
        entries, pkgs_part = package_entries(pkgs, environments, warn) if is_real_dir(pkgs) else ([], None)
        measured = measure_cache(root, None, warn, {PKGS: pkgs_part} if pkgs_part else None)
        if measured is None:
            continue
        whole, parts = measured
        total.update(whole)
        unused = [e for e in entries if not e.users]
        caches[root] = {
            "tool": TOOL,
            "users": [user.name for user in owners],
            "usage": whole.as_dict(now),
            "sections": dict((name, part.as_dict(now)) for name, part in sorted(parts.items())),
            "filesystem": filesystem(root),
            "packages": [entry.as_dict() for entry in entries] if list_packages else None,
            "in_use": len(entries) - len(unused),
            "unused": len(unused),
            "unused_reclaimable_bytes": cleanup.usage_of(unused).reclaimable,
            "shared_bytes": sum(e.usage.shared for e in entries) if all(e.shared_known for e in entries) else None,
        }
    reclaimable = sum(c["unused_reclaimable_bytes"] for c in caches.values())
    return {
        "users": dict((name, location) for name, location in locations.items()
                      if any(name in cache["users"] for cache in caches.values())),
        "caches": caches,
        "environments": environments.prefixes,
        "totals": {TOOL: total.as_dict(now)},
        "summary": "rattler: %d cache(s), %s on disk, %s in unused packages; %d environment(s) found" % (
            len(caches), human_bytes(total.usage.on_disk), human_bytes(reclaimable), len(environments.prefixes)),
        "search_incomplete": environments.incomplete,
    }
