# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each user's pip and uv caches are, and what they hold.

Location follows pip's own rules (``pip/_internal/configuration.py``, ``cli/parser.py``,
``utils/appdirs.py``) evaluated *for another user*: their home from passwd, their config files,
and an explicit environment instead of the module's own (a module never sees a user's shell
variables).  Sizes come from ``_diskusage`` in one pass per cache; nothing is written and no
symlink inside a cache is followed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import configparser
import io
import json
import os
import posixpath
import pwd
import re
import stat
import time

from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, filesystem, walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import open_regular
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import READ_TEXT, human_bytes, is_clean

CONFIG_BASENAME = "pip.conf"
# pip applies [global], then the running command's section, then PIP_* variables.  The cache is
# filled by `pip install`, so that is the command whose view we report.
COMMAND_SECTION = "install"
ENV_SECTION = ":env:"
# Names pip ignores among PIP_* variables (configuration.ENV_NAMES_IGNORED).
ENV_NAMES_IGNORED = ("version", "help")
_TRUE = ("y", "yes", "t", "true", "on", "1")
_FALSE = ("n", "no", "f", "false", "off", "0")
OTHER = "other"
# Sources of a cache location: a user's own default, or a variable of the module's environment.
DEFAULT_SOURCES = ("default", "XDG_CACHE_HOME")
ENV_SOURCES = ("PIP_CACHE_DIR", "UV_CACHE_DIR")
UV_LOCK = ".lock"  # uv's own cache lock


def _is_any_file(name):
    return True


def _is_http_v2_item(name):
    # pip >= 23.3 stores a response as `<hash>` (metadata) plus `<hash>.body`: one item.
    return not name.endswith(".body")


# Top-level parts of a pip cache and which of their files are items (`pip cache` vocabulary).
PIP_SECTIONS = {
    "http-v2": _is_http_v2_item,
    "http": _is_any_file,
    "wheels": lambda name: name.endswith(".whl"),
    "selfcheck": lambda name: name.endswith(".json"),
}


def _normalize_name(name):
    """pip's key normalisation: case-insensitive, `_` == `-`, optional leading `--`."""
    name = name.lower().replace("_", "-")
    return name[2:] if name.startswith("--") else name


def _strtobool(value):
    value = value.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def expand_user(path, home):
    """``os.path.expanduser`` as the cache's owner would see it: ``~`` is *their* home."""
    if not path.startswith("~"):
        return path
    end = path.find("/", 1)
    if end < 0:
        end = len(path)
    name = path[1:end]
    if name:
        try:
            base = pwd.getpwnam(name).pw_dir
        except KeyError:
            return path
    else:
        base = home
    return (base.rstrip("/") + path[end:]) or "/"


def _xdg_dir(env, name):
    # platformdirs ignores a relative or blank XDG_* value.
    value = env.get(name, "").strip()
    return value if posixpath.isabs(value) else None


def config_home(home, env):
    """The user's config directory: ``$XDG_CONFIG_HOME`` when absolute, else ``~/.config``."""
    return _xdg_dir(env, "XDG_CONFIG_HOME") or posixpath.join(home, ".config")


def _xdg_dirs(env, name, default):
    dirs = [part.strip() for part in env.get(name, "").split(os.pathsep)]
    dirs = [part for part in dirs if posixpath.isabs(part)]
    return dirs or default


def _default_cache(home, env, tool):
    """``$XDG_CACHE_HOME/<tool>`` or ``~/.cache/<tool>``, and which of the two it was."""
    xdg = _xdg_dir(env, "XDG_CACHE_HOME")
    if xdg:
        return posixpath.join(xdg, tool), "XDG_CACHE_HOME"
    return posixpath.join(home, ".cache", tool), "default"


def pip_config_files(home, env, etc_dir="/etc"):
    """The pip config files one user's pip would load, in load order (a later file wins).

    Global (``$XDG_CONFIG_DIRS/pip``, default ``/etc/xdg/pip``, then ``/etc``), user (``~/.pip``,
    then ``$XDG_CONFIG_HOME/pip``), site (``$VIRTUAL_ENV``), then ``PIP_CONFIG_FILE``.  User
    files are skipped when ``PIP_CONFIG_FILE`` names an existing file;
    ``PIP_CONFIG_FILE=/dev/null`` disables every file.  ``etc_dir`` stands for ``/etc`` so the
    rules can be exercised on a tree that is not the running host's.
    """
    env_file = env.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    xdg_dirs = _xdg_dirs(env, "XDG_CONFIG_DIRS", [posixpath.join(etc_dir, "xdg")])
    files = [posixpath.join(d, "pip", CONFIG_BASENAME) for d in xdg_dirs]
    files.append(posixpath.join(etc_dir, CONFIG_BASENAME))
    if not (env_file and os.path.exists(env_file)):
        files.append(posixpath.join(home, ".pip", CONFIG_BASENAME))
        files.append(posixpath.join(config_home(home, env), "pip", CONFIG_BASENAME))
    if env.get("VIRTUAL_ENV"):
        files.append(posixpath.join(env["VIRTUAL_ENV"], CONFIG_BASENAME))
    if env_file is not None:
        files.append(env_file)
    return files


def read_pip_config(path, warn, text=None):
    """``{section: {key: value}}`` of one pip config file, keys normalised as pip does (of
    ``text`` instead of the file's content when given: a file as an edit would leave it).

    Returns None when the file does not exist, or (after a warning naming it) cannot be read or
    parsed: pip itself would stop with an error there, we report everything else.
    """
    if text is None and not os.path.exists(path):
        return None
    parser = configparser.RawConfigParser()
    parser.optionxform = _normalize_name
    try:
        if text is None:
            with io.open(open_regular(path, follow=True), **READ_TEXT) as handle:
                text = handle.read()
        if not is_clean(text):
            raise ValueError("bytes that are not UTF-8")
        parser.read_string(text, source=path)
    except (OSError, ValueError, configparser.Error) as exc:
        warn("pip configuration file %s could not be read and was ignored: %s" % (path, _one_line(exc)))
        return None
    return dict((section, dict(parser.items(section))) for section in parser.sections())


def _one_line(exc):
    return " ".join(str(exc).split())


def _option_layers(home, env, warn, etc_dir, command=COMMAND_SECTION, texts=None):
    """pip's precedence as layers (global, ``command``, environment), each ``{key: (value, source)}``.

    Within a section a later file overrides an earlier one, even with an empty value, and empty
    values are then dropped -- exactly pip's ``_get_ordered_configuration_items``.  ``texts``
    (``{path: text or None for no file}``) stands in for files as an edit would leave them.
    """
    texts = texts or {}
    loaded = {}
    for path in pip_config_files(home, env, etc_dir):
        if path in texts and texts[path] is None:
            continue
        data = read_pip_config(path, warn, texts.get(path))
        if data is not None:
            loaded[path] = data
    layers = []
    for section in ("global", command):
        layer = {}
        for path, data in loaded.items():
            for key, value in data.get(section, {}).items():
                layer[key] = (value, "%s [%s]" % (path, section))
        layers.append(layer)
    env_layer = {}
    for var, value in env.items():
        if var.startswith("PIP_") and var[4:].lower() not in ENV_NAMES_IGNORED:
            env_layer[_normalize_name(var[4:])] = (value, var)
    layers.append(env_layer)
    dropped_empty = [dict((k, v) for k, v in layer.items() if v[0]) for layer in layers]
    return list(loaded), dropped_empty


def _absolute(path, home, what, warn):
    if posixpath.isabs(path):
        return path
    warn("%s %r is relative; it depends on the working directory, resolved against %s" % (what, path, home))
    return posixpath.join(home, path)


def resolve_pip_cache(home, env, warn, etc_dir="/etc"):
    """:func:`pip_cache_location`, with ``path`` made real as pip's ``normalize_path`` does, so
    users sharing one cache resolve to the same string."""
    return _resolved(pip_cache_location(home, env, warn, etc_dir))


def _resolved(location):
    location["path"] = os.path.realpath(location.pop("configured"))
    return location


def pip_cache_location(home, env, warn, etc_dir="/etc", command=COMMAND_SECTION, texts=None):
    """The cache directory pip's ``command`` would use for the user whose home is ``home``, as
    configured (``configured``, symlinks not resolved: who controls them matters to a cleanup).

    ``cache-dir`` from the highest layer wins; a valid ``no-cache-dir`` anywhere disables the
    cache, whatever its value and order (pip's late-evaluated callback).  ``texts``: see
    :func:`_option_layers`.
    """
    config_files, layers = _option_layers(home, env, warn, etc_dir, command, texts)
    value, source, disabled_by = None, "default", None
    for layer in layers:
        if "cache-dir" in layer:
            value, source = layer["cache-dir"]
        if "no-cache-dir" in layer:
            flag, where = layer["no-cache-dir"]
            if _strtobool(flag) is None:
                warn("%s: no-cache-dir = %r is not a boolean; pip refuses to run with it, ignored here" % (where, flag))
            else:
                disabled_by = where
    if value is None:
        path, source = _default_cache(home, env, "pip")
    else:
        path = _absolute(expand_user(value, home), home, "pip cache-dir from %s" % source, warn)
    return {
        "configured": path,
        "enabled": disabled_by is None,
        "source": source,
        "disabled_by": disabled_by,
        "config_files": config_files,
    }


def resolve_uv_cache(home, env, warn, etc_dir="/etc"):
    """:func:`uv_cache_location` with ``path`` made real."""
    return _resolved(uv_cache_location(home, env, warn, etc_dir))


# A top-level ``cache-dir`` of a uv.toml, as a TOML basic or literal string (``uv-settings``).
_UV_CACHE_DIR_KEY = re.compile(
    r"""^[ \t]*(?:cache-dir|"cache-dir"|'cache-dir')[ \t]*=[ \t]*("(?:[^"\\\n]|\\.)*"|'[^'\n]*')[ \t]*(?:#.*)?$""")
_TOML_TABLE = re.compile(r"^[ \t]*\[")


def uv_config_files(home, env, etc_dir="/etc"):
    """The uv.toml files one user's uv would read, strongest first: ``UV_CONFIG_FILE`` alone, else
    the user's (``$XDG_CONFIG_HOME/uv``, ``~/.config/uv``) then the system's (the first of
    ``$XDG_CONFIG_DIRS/uv``, default ``/etc/xdg/uv``, else ``/etc/uv``); none with ``UV_NO_CONFIG``
    (``uv-dirs`` ``user_uv_config_dir``, ``system_config_file``).  A project's own uv.toml depends on
    the directory uv runs in and is not considered."""
    if env.get("UV_NO_CONFIG"):
        return []
    if env.get("UV_CONFIG_FILE"):
        return [env["UV_CONFIG_FILE"]]
    files = [posixpath.join(config_home(home, env), "uv", "uv.toml")]
    system = posixpath.join(etc_dir, "uv", "uv.toml")
    for directory in (env.get("XDG_CONFIG_DIRS") or posixpath.join(etc_dir, "xdg")).split(os.pathsep):
        if not directory:
            continue
        candidate = posixpath.join(directory, "uv", "uv.toml")
        if os.path.isfile(candidate):
            system = candidate
            break
    return files + [system]


def read_uv_cache_dir(path, warn, texts=None):
    """The top-level ``cache-dir`` of one uv.toml, or None (no file, no key; unreadable with a
    warning).  ``texts``: ``{path: text or None}`` read instead of the file (None: no file), to
    resolve what an edit would leave."""
    if texts and path in texts:
        text = texts[path]
        if text is None:
            return None
    else:
        try:
            with io.open(open_regular(path, follow=True), **READ_TEXT) as handle:
                text = handle.read()
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            warn("uv configuration file %s could not be read and was ignored: %s" % (path, _one_line(exc)))
            return None
    for line in text.splitlines():
        if _TOML_TABLE.match(line):
            return None
        match = _UV_CACHE_DIR_KEY.match(line)
        if match:
            value = match.group(1)
            return json.loads(value) if value.startswith('"') else value[1:-1]
        if re.match(r"^[ \t]*[\"']?cache-dir\b", line):
            warn("uv configuration file %s: cache-dir is not a plain string here and was ignored" % path)
    return None


def uv_cache_location(home, env, warn, etc_dir="/etc", texts=None):
    """uv's cache directory: ``UV_CACHE_DIR``, else ``cache-dir`` of the user's then the system's
    uv.toml (:func:`uv_config_files`), else ``$XDG_CACHE_HOME/uv`` or ``~/.cache/uv``.  uv expands
    nothing in ``cache-dir`` (no ``~``): a relative one is relative to where uv runs, resolved
    against the home here with a warning.  ``texts``: see :func:`read_uv_cache_dir`."""
    value = env.get("UV_CACHE_DIR")
    if value:
        return {"configured": _absolute(value, home, "UV_CACHE_DIR", warn), "source": "UV_CACHE_DIR"}
    for path in uv_config_files(home, env, etc_dir):
        value = read_uv_cache_dir(path, warn, texts)
        if value:
            return {"configured": _absolute(value, home, "uv cache-dir from %s" % path, warn), "source": path}
    path, source = _default_cache(home, env, "uv")
    return {"configured": path, "source": source}


class Part(object):
    """One part of a cache: its DiskUsage plus the count and ages of its items, from the same walk.

    An item is a cached thing (a response, a wheel, a state file); DiskUsage's ``entries`` counts
    every directory entry instead.
    """

    __slots__ = ("usage", "items", "oldest", "newest", "_is_item")

    def __init__(self, is_item=_is_any_file):
        self.usage = DiskUsage()
        self.items = 0
        self.oldest = None
        self.newest = None
        self._is_item = is_item

    def see(self, path, st):
        """``walk`` callback: count the regular files that are items and track their mtimes."""
        if stat.S_ISREG(st.st_mode) and self._is_item(posixpath.basename(path)):
            self.items += 1
            self._span(int(st.st_mtime))

    def _span(self, mtime):
        self.oldest = mtime if self.oldest is None else min(self.oldest, mtime)
        self.newest = mtime if self.newest is None else max(self.newest, mtime)

    def update(self, other):
        """Fold another part in (its items, ages and inode-once usage)."""
        self.usage.update(other.usage)
        self.items += other.items
        for mtime in (other.oldest, other.newest):
            if mtime is not None:
                self._span(mtime)

    def as_dict(self, now):
        result = self.usage.as_dict()
        result["items"] = self.items
        result["oldest_mtime"] = self.oldest
        result["newest_mtime"] = self.newest
        result["oldest_age_seconds"] = None if self.oldest is None else int(now) - self.oldest
        result["newest_age_seconds"] = None if self.newest is None else int(now) - self.newest
        return result


def measure_cache(path, known, warn, measured=None):
    """Account the cache at ``path`` in one pass; ``(total Part, {name: Part})`` or None if absent.

    ``known`` maps top-level directory names to item rules and those parts are always
    reported; with ``known=None`` every top-level directory is its own part (uv's versioned
    buckets).  Anything else at the top goes to ``other``.  Unreadable entries are warned
    about by path and the walk goes on.  ``measured`` maps top-level names to the Parts a
    kind's own walk already accounted (rattler's ``pkgs``); they are not walked again.
    """

    def on_error(where, exc):
        warn("cannot read %s: %s" % (where, _one_line(exc)))

    try:
        root = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        on_error(path, exc)
        return None
    if not stat.S_ISDIR(root.st_mode):
        warn("cache path %s is not a directory; skipped" % path)
        return None
    parts = dict((name, Part(rule)) for name, rule in (known or {}).items())
    parts[OTHER] = Part()
    try:
        with os.scandir(path) as listing:
            children = [(entry.name, entry.path, entry.is_dir(follow_symlinks=False)) for entry in listing]
    except OSError as exc:
        on_error(path, exc)
        children = []
    for name, child, is_dir in children:
        if measured and name in measured:
            parts[name] = measured[name]
            continue
        if not is_dir:
            part = parts[OTHER]
        elif known is None:
            part = parts.setdefault(name, Part())
        else:
            part = parts.get(name, parts[OTHER])
        walk(child, part.usage, on_error=on_error, on_entry=part.see)
    total = Part()
    total.usage.add(root)
    for part in parts.values():
        total.update(part)
    return total, parts


def gather_facts(users, env, warn, now=None, keep_empty=False, etc_dir="/etc"):
    """``ansible_facts.pip_cache`` for ``users``.

    Caches are keyed by path and measured once however many users share them, so totals never
    count a byte twice.  Users without any cache on disk are left out unless ``keep_empty``
    (an explicit ``users`` list).  A missing home is warned about for those and for accounts
    with a login shell; system accounts routinely name homes that do not exist.
    """
    now = time.time() if now is None else now
    report, caches, measured = {}, {}, {}
    totals = {"pip": Part(), "uv": Part()}
    for user in users:
        if (keep_empty or user.logs_in) and not os.path.isdir(user.home):
            warn("home directory %s of user %s does not exist" % (user.home, user.name))
        locations = {
            "pip": resolve_pip_cache(user.home, env, warn, etc_dir),
            "uv": resolve_uv_cache(user.home, env, warn, etc_dir),
        }
        for tool, location in locations.items():
            path = location["path"]
            if path not in measured:
                measured[path] = measure_cache(path, PIP_SECTIONS if tool == "pip" else None, warn)
                if measured[path] is not None:
                    total, parts = measured[path]
                    totals[tool].update(total)
                    caches[path] = {
                        "tool": tool,
                        "users": [],
                        "usage": total.as_dict(now),
                        "sections": dict((name, part.as_dict(now)) for name, part in sorted(parts.items())),
                        "filesystem": filesystem(path),
                    }
            location["exists"] = measured[path] is not None
            if location["exists"]:
                caches[path]["users"].append(user.name)
        if keep_empty or any(location["exists"] for location in locations.values()):
            report[user.name] = {"uid": user.uid, "home": user.home, "pip": locations["pip"], "uv": locations["uv"]}
    everything = Part()
    for part in totals.values():
        everything.update(part)
    summary = "; ".join(
        "%s: %d cache(s), %s on disk, %s reclaimable"
        % (tool, sum(1 for c in caches.values() if c["tool"] == tool), human_bytes(part.usage.on_disk), human_bytes(part.usage.reclaimable))
        for tool, part in sorted(totals.items())
    )
    return {
        "users": report,
        "caches": caches,
        "totals": {"pip": totals["pip"].as_dict(now), "uv": totals["uv"].as_dict(now), "all": everything.as_dict(now)},
        "summary": summary,
    }
