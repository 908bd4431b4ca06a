# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What mamba and micromamba do differently from conda, as the conda model needs it: where their
root prefixes are, where mamba >= 2.6 puts a package inside a cache, its lock files and its trash (whether a lock
is held: ``_procs.lock_is_held``).

From libmamba's sources: ``api/configuration.cpp`` (``get_root_prefix``,
``fallback_pkgs_dirs_hook``, ``compute_default_rc_sources``), ``core/package_cache.cpp``
(``package_cache_folder_relative_path``), ``core/util.cpp`` (``LockFileOwner``,
``remove_or_rename``, ``clean_trash_files``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import io
import os
import re

from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import act_as
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import open_regular
from ansible_collections.pkgcache.fleet.plugins.module_utils._privdrop import PrivDropError
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import READ_TEXT

MAMBA = "mamba"
CONDA = "conda"
LOCK_SUFFIX = ".lock"
TRASH_SUFFIX = ".mamba_trash"
TRASH_INDEX = os.path.join("conda-meta", "mamba_trash.txt")
# The last folder of a package's place in a channel: its subdir, ``noarch`` or a platform of
# conda's KNOWN_SUBDIRS (``conda/base/constants.py``) by its operating system part, so that a
# channel named like ``conda-forge`` is not taken for one.
SUBDIR = re.compile(r"^(noarch|(linux|osx|win|freebsd|emscripten|wasi|zos)-[a-z0-9_]+)$")
# util.cpp token_regex and remove_secrets_and_login_credentials (``user:password@`` only).
_TOKEN = re.compile(r"/t/[a-zA-Z0-9_-]+")
_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^:@\s]+:[^@\s*]+@")


def root_candidates(users, env):
    """Where micromamba's root prefix may be: ``MAMBA_ROOT_PREFIX``, then per user
    ``~/micromamba`` (mamba 1) and the user data dir's ``mamba`` (mamba 2:
    ``$XDG_DATA_HOME/mamba``, ``~/.local/share/mamba``)."""
    found = []
    if env.get("MAMBA_ROOT_PREFIX"):
        found.append(env["MAMBA_ROOT_PREFIX"])
    for user in users:
        found.append(os.path.join(user.home, "micromamba"))
        if env.get("XDG_DATA_HOME"):
            found.append(os.path.join(env["XDG_DATA_HOME"], "mamba"))
        found.append(os.path.join(user.home, ".local", "share", "mamba"))
    return [os.path.normpath(path) for path in found if os.path.isabs(path)]


def is_root(path):
    """A micromamba root prefix: a directory (not a link) with ``pkgs/``, ``envs/`` or ``conda-meta/``
    (micromamba makes ``pkgs/`` and ``envs/`` on first use; a base env is optional)."""
    if os.path.islink(path) or not os.path.isdir(path):
        return False
    return any(os.path.isdir(os.path.join(path, name)) for name in ("pkgs", "envs", "conda-meta"))


def cache_folder(url, filename=None):
    """mamba >= 2.6's folder for a package inside a cache (``package_cache_folder_relative_path``):
    the download URL without token and ``user:password@``, then without the file name, ``://`` made ``/`` and ``:``
    or ``\\`` made ``_``.  ``https://conda.anaconda.org/conda-forge/noarch/x.conda`` ->
    ``https/conda.anaconda.org/conda-forge/noarch``."""
    path = _CREDENTIALS.sub(r"\1", _TOKEN.sub("", url))
    if filename and path.endswith(filename):
        path = path[: -len(filename)]
    elif "/" in path:
        path = path.rsplit("/", 1)[0]
    path = path.rstrip("/").replace("://", "/")
    return re.sub(r"[:\\]", "_", path)


def split_relpath(relpath):
    """A cache item's place, ``(folder, name)``: ``folder`` is ``""`` in the flat layout, else the
    channel folders down to the subdir (``https/host/channel/linux-64``).  None when ``relpath``
    is not a package's place (no subdir folder right above it, or an empty or ``..`` part)."""
    parts = relpath.split("/")
    if not all(parts) or ".." in parts or "." in parts:
        return None
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) < 3 or not SUBDIR.match(parts[-2]):
        return None
    return "/".join(parts[:-1]), parts[-1]


def folder_key(folder):
    """A cache folder as the same place whatever filesystem normalisation did to it (a
    ``file:///`` URL gives ``file//tmp/...``, which the filesystem reads as ``file/tmp/...``)."""
    return "/".join(part for part in folder.split("/") if part)


def dir_lock_name(path):
    """The file mamba locks a directory with: ``<dir>/<dirname>.lock``."""
    return os.path.basename(os.path.normpath(path)) + LOCK_SUFFIX


def item_lock(path):
    """The lock mamba takes on a cache item while working on it: ``<file>.lock`` for an archive,
    ``<dir>/<dirname>.lock`` for a directory."""
    if os.path.isdir(path) and not os.path.islink(path):
        return os.path.join(path, dir_lock_name(path))
    return path + LOCK_SUFFIX


def _index_lines(path):
    try:
        fd = open_regular(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise
    with io.open(fd, **READ_TEXT) as handle:
        return [line.rstrip("\r\n") for line in handle]


def trash_entries(prefix, warnings, identity):
    """The prefix-relative paths ``conda-meta/mamba_trash.txt`` lists that are mamba's trash (a
    ``.mamba_trash`` name inside the prefix); any other line is left alone and warned about.

    Read with the prefix owner's credentials (``identity``, an ``_authority.Identity``): its user
    may have made it a symlink to a file only root may read (whose lines the warnings would
    quote), or a FIFO; a FIFO is not waited on."""
    path = os.path.join(prefix, TRASH_INDEX)
    try:
        lines = act_as(identity, _index_lines, path)
    except (OSError, IOError, PrivDropError) as exc:
        warnings.path_error(path, exc)
        return []
    entries = []
    for line in lines:
        if not line:
            continue
        rel = os.path.normpath(line)
        if os.path.isabs(rel) or rel.split(os.sep)[0] == ".." or not rel.endswith(TRASH_SUFFIX):
            warnings.notice("%s: %r is not mamba trash inside the prefix; left alone" % (path, line))
            continue
        entries.append(rel)
    return entries
