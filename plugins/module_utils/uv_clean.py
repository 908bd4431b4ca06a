# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""uv caches are cleaned the way uv cleans them: by ``uv cache prune``/``clean`` when the host has
a ``uv`` for the cache's owner, otherwise by our own prune, which removes exactly what ``uv cache
prune`` removes (``Cache::prune`` in uv's ``crates/uv-cache/src/lib.rs``) and nothing else --
uv's documentation forbids editing the cache in any other way.

Either way the plan is ours, made under uv's exclusive cache lock, so check mode predicts a real
run; through a ``uv`` binary the whole plan is one unit (uv cannot prune half a cache) and what
uv removed is read back from the disk.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import posixpath
import pwd
import re
import stat
import subprocess

from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import ROOT, path_controllers
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_cache import UV_LOCK

LOCK = UV_LOCK
TAG = "CACHEDIR.TAG"
# Root entries prune never touches.
MARKERS = (TAG, ".gitignore", ".git", LOCK)
# ``CacheBucket::to_str`` of the uv release the tests pin (requirements/controller.txt), in
# ``CacheBucket::iter`` order.  uv bumps a bucket's version when its format changes; prune then
# removes the old one.
BUCKETS = ("wheels-v8", "sdists-v11", "flat-index-v7", "git-v2", "interpreter-v5", "simple-v28", "archive-v0",
           "builds-v0", "environments-v2", "python-v1", "binaries-v0", "osv-v1")
ARCHIVE = "archive-v0"
ENVIRONMENTS = "environments-v2"
# Buckets whose symlinks keep an archive (``find_archive_references``).
REFERRERS = ("sdists-v11", "wheels-v8")
_VERSIONED = re.compile(r"^(.+)-v(\d+)$")
_KNOWN_VERSION = dict((_VERSIONED.match(name).group(1), int(_VERSIONED.match(name).group(2))) for name in BUCKETS)
# What ``find_archive_references`` does not descend into: files uv writes next to its links.
_UNSEARCHED_NAMES = ("src", LOCK, ".gitignore")
_UNSEARCHED_SUFFIXES = (".lock", ".whl", ".http", ".rev", ".msgpack")
ACTIONS = ("prune", "clean")
# Seconds uv waits for its own cache lock (``UV_LOCK_TIMEOUT``) before giving up.
LOCK_TIMEOUT = 60
# Where uv's installer puts uv (``$XDG_BIN_HOME``, then ``~/.local/bin``; ``~/.cargo/bin`` before
# uv 0.5), looked at before ``PATH``: the installer puts them first in a user's shell.
HOME_BINS = (".local/bin", ".cargo/bin")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def newer_bucket(name):
    """Whether ``name`` is a bucket of a uv newer than :data:`BUCKETS` knows: our prune keeps it
    (the uv that wrote it may still be running) where the pinned uv would remove it."""
    match = _VERSIONED.match(name)
    return bool(match) and int(match.group(2)) > _KNOWN_VERSION.get(match.group(1), float("inf"))


def _searched(name):
    # Rust's ``Path::extension``: after the last dot, unless that dot starts the name.
    stem, dot, extension = name.rpartition(".")
    return name not in _UNSEARCHED_NAMES and not (dot and stem and "." + extension.lower() in _UNSEARCHED_SUFFIXES)


def archive_references(cache, scan, warn):
    """Real paths that the symlinks of the referring buckets resolve to (uv canonicalizes both
    sides, so only a link resolving to the archive directory itself keeps it)."""
    found = set()
    for bucket in REFERRERS:
        root = scan(cache, bucket, warn)
        if root is None or not root.is_dir:
            continue
        stack = [root]
        while stack:
            node = stack.pop()
            if stat.S_ISLNK(node.st.st_mode):
                target = os.path.join(cache, node.relpath)
                if os.path.exists(target):
                    found.add(os.path.realpath(target))
            elif node.is_dir:
                stack.extend(child for child in node.children if _searched(child.name))
    return found


def plan_prune(plan, scan, warn, remove):
    """What ``uv cache prune`` removes, into ``plan``: root entries that are not uv's (outdated
    buckets, stray files), every cached environment, and every archive no wheel or sdist entry
    links to.  ``scan`` reads a tree (``pip_clean.scan``), ``remove(plan, node, reason)`` plans it."""
    cache = plan.path
    for name in sorted(os.listdir(cache)):
        node = None if name in MARKERS else scan(cache, name, warn)
        if node is None or node.is_dir and name in BUCKETS:
            continue
        if node.is_dir and newer_bucket(name):
            plan.keep("bucket of a newer uv than this module knows", posixpath.join(cache, name))
        elif node.pinned:
            plan.keep("unreadable or a mount point", posixpath.join(cache, name))
        else:
            remove(plan, node, "not a bucket of this uv" if node.is_dir else "not a file of uv's")
    for entry in _entries(cache, ENVIRONMENTS, plan, scan, warn):
        remove(plan, entry, "cached environment")
    archives = list(_entries(cache, ARCHIVE, plan, scan, warn))
    referenced = archive_references(cache, scan, warn) if archives else set()
    for entry in archives:
        if os.path.realpath(os.path.join(cache, entry.relpath)) in referenced:
            plan.keep("archive a cache entry links to")
        else:
            remove(plan, entry, "archive no cache entry links to")


def _entries(cache, bucket, plan, scan, warn):
    """The entries of one bucket that can be acted on; unreadable ones and mount points are kept."""
    root = scan(cache, bucket, warn)
    for entry in root.children if root is not None and root.is_dir else ():
        if entry.pinned:
            plan.keep("unreadable or a mount point", posixpath.join(cache, entry.relpath))
        else:
            yield entry


def plan_clean(plan, scan, warn, remove):
    """What ``uv cache clean`` removes: everything in the cache but its lock file."""
    for name in sorted(os.listdir(plan.path)):
        node = scan(plan.path, name, warn) if name != LOCK else None
        if node is not None:
            remove(plan, node, "uv cache clean")


def find_uv(identity, homes, env):
    """The ``uv`` to run as ``identity`` (an ``_authority.Identity``), or None.

    Looked for as that user's shell would find it: uv's installer locations in their home
    (:data:`HOME_BINS`; ``homes`` maps uids to homes, else passwd says), then ``PATH`` from the
    module's ``environment`` (else a login's default).  Only a regular executable file that
    nobody but root and that user can replace is taken, so running it as them never runs someone
    else's program.
    """
    home = dict(homes).get(identity.uid)
    if home is None:
        try:
            home = pwd.getpwuid(identity.uid).pw_dir
        except KeyError:
            home = None
    dirs = [posixpath.join(home, sub) for sub in HOME_BINS] if home and home != "/" else []
    dirs += [d for d in (env.get("PATH") or DEFAULT_PATH).split(":") if posixpath.isabs(d)]
    for directory in dirs:
        candidate = posixpath.join(directory, "uv")
        try:
            real, controllers = path_controllers(candidate)
            st = os.stat(real)
        except OSError:
            continue
        replaceable = controllers - set([ROOT, identity.uid]) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111 and not replaceable:
            return candidate
    return None


def run_uv(binary, action, path, relpaths, expect=None):
    """``uv cache <action>`` on ``path`` in this process's credentials (the cache owner's, see
    ``cleanup.execute``); ``(planned relpaths now gone, errors)`` in the pipeline's shape.  A uv
    of another release than :data:`BUCKETS` describes may keep planned paths (``left_by_uv``) or
    remove more (seen only in the freed bytes); its failure is the error.

    uv reads no config (``--no-config``) and waits at most :data:`LOCK_TIMEOUT` for its lock; the
    directory must still be the one planned (``expect``).
    """
    st = os.stat(path)
    if expect is not None and (st.st_dev, st.st_ino, st.st_uid) != tuple(expect):
        return [], ["%s: not the directory that was planned (replaced or chowned since)" % path]
    try:
        home = pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        home = "/"
    env = {"HOME": home, "PATH": DEFAULT_PATH, "LC_ALL": "C", "NO_COLOR": "1", "UV_LOCK_TIMEOUT": str(LOCK_TIMEOUT)}
    proc = subprocess.Popen([binary, "--no-config", "--no-progress", "cache", action, "--cache-dir", path],
                            cwd="/", env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    err = proc.communicate()[1]
    done = [relpath for relpath in relpaths if not os.path.lexists(posixpath.join(path, relpath))]
    if proc.returncode == 0:
        return done, []
    lines = err.decode("utf-8", "replace").strip().splitlines() or ["no message"]
    return done, ["%s: %s cache %s exited with %d: %s" % (path, binary, action, proc.returncode, lines[-1])]
