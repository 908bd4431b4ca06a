# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The offline channel of a backup directory: ``channel/<subdir>/`` holds every host's latest
tarballs (hard links to the store's objects) and a ``repodata.json`` built from their records, so
conda can install from ``file://<dest>/channel`` with no network.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os

from ansible_collections.pkgcache.fleet.plugins.module_utils import _removal
from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import WriteFailed, hash_copy
from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import unlink_quiet
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import CREATE_FLAGS
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_store import CHANNEL_DIR, BackupError, backup_error

# Fields of repodata_record.json that a channel's repodata.json does not repeat per package.
NOT_IN_REPODATA = ("fn", "url", "channel")


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
        raise backup_error("cannot update the channel", directory, exc)
    except _removal.RemovalError as exc:
        raise BackupError(str(exc))
    return bool(links or indexes)


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
            if not same_file(source, target):
                links.append((source, target))
        relpath = os.path.join(CHANNEL_DIR, subdir, "repodata.json")
        data = repodata(subdir, packages)
        if load_json(store.path(relpath)) != data:
            indexes.append((relpath, data))
    return links, indexes


def same_file(one, other):
    try:
        a, b = os.stat(one), os.lstat(other)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def load_json(path):
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
            place(store, source, target)
        except OSError as exc:
            raise backup_error("cannot place channel file", target, exc)
        except WriteFailed as exc:
            raise backup_error("cannot place channel file", target, exc.error)
    for relpath, data in indexes:
        directory = store.path(os.path.dirname(relpath))
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        store.write_json(relpath, data)


def place(store, source, target):
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
            fd = os.open(temp, CREATE_FLAGS, 0o644)
            try:
                hash_copy(source, fd, want_md5=False)
            finally:
                os.close(fd)
        os.rename(temp, target)
    finally:
        unlink_quiet(temp)
