# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda's configuration, resolved the way conda resolves it, without running conda.

Only the keys this collection needs (``pkgs_dirs``, ``envs_dirs`` and its alias ``envs_path``)
are interpreted; the rest of a ``.condarc`` is skipped structurally.  Managed hosts have no YAML
library, so this reads the YAML subset ``.condarc`` files use: top-level ``key: value`` pairs, block
and flow sequences, comments, and conda's ``#!final`` / ``#!top`` / ``#!bottom`` markers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import os
import re

from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import open_regular
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import READ_TEXT, is_clean

# conda/base/constants.py SEARCH_PATH, lowest precedence first.
SEARCH_PATH = (
    "/etc/conda/.condarc",
    "/etc/conda/condarc",
    "/etc/conda/condarc.d/",
    "/var/lib/conda/.condarc",
    "/var/lib/conda/condarc",
    "/var/lib/conda/condarc.d/",
    "$CONDA_ROOT/.condarc",
    "$CONDA_ROOT/condarc",
    "$CONDA_ROOT/condarc.d/",
    "$XDG_CONFIG_HOME/conda/.condarc",
    "$XDG_CONFIG_HOME/conda/condarc",
    "$XDG_CONFIG_HOME/conda/condarc.d/",
    "~/.config/conda/.condarc",
    "~/.config/conda/condarc",
    "~/.config/conda/condarc.d/",
    "~/.conda/.condarc",
    "~/.conda/condarc",
    "~/.conda/condarc.d/",
    "~/.condarc",
    "$CONDA_PREFIX/.condarc",
    "$CONDA_PREFIX/condarc",
    "$CONDA_PREFIX/condarc.d/",
    "$CONDARC",
)

# libmamba api/configuration.cpp compute_default_rc_sources, lowest precedence first; ``$CONFIG``
# is the user config dir ($XDG_CONFIG_HOME, else ~/.config).  A file named twice counts once, where
# it comes first.
MAMBA_SEARCH_PATH = (
    "/etc/conda/.condarc",
    "/etc/conda/condarc",
    "/etc/conda/condarc.d/",
    "/etc/conda/.mambarc",
    "/var/lib/conda/.condarc",
    "/var/lib/conda/condarc",
    "/var/lib/conda/condarc.d/",
    "/var/lib/conda/.mambarc",
    "$CONDA_ROOT/.condarc",
    "$CONDA_ROOT/condarc",
    "$CONDA_ROOT/condarc.d/",
    "$CONDA_ROOT/.mambarc",
    "$CONFIG/conda/.condarc",
    "$CONFIG/conda/condarc",
    "$CONFIG/conda/condarc.d/",
    "~/.conda/.condarc",
    "~/.conda/condarc",
    "~/.conda/condarc.d/",
    "~/.condarc",
    "$XDG_CONFIG_HOME/conda/.condarc",
    "$XDG_CONFIG_HOME/conda/condarc",
    "$XDG_CONFIG_HOME/conda/condarc.d/",
    "$CONDA_PREFIX/.condarc",
    "$CONDA_PREFIX/condarc",
    "$CONDA_PREFIX/condarc.d/",
    "$CONDARC",
    "$CONFIG/mamba/.mambarc",
    "$CONFIG/mamba/mambarc",
    "$CONFIG/mamba/mambarc.d/",
    "~/.mamba/.mambarc",
    "~/.mamba/mambarc",
    "~/.mamba/mambarc.d/",
    "~/.mambarc",
    "$MAMBARC",
)
SEARCH_PATHS = {"conda": SEARCH_PATH, "mamba": MAMBA_SEARCH_PATH}

# Setting -> (aliases read from files, environment variables, delimiter for the variables).
SEQUENCE_SETTINGS = {
    "pkgs_dirs": (("pkgs_dirs",), ("CONDA_PKGS_DIRS",), ","),
    "envs_dirs": (("envs_dirs", "envs_path"), ("CONDA_ENVS_DIRS", "CONDA_ENVS_PATH"), os.pathsep),
}

FINAL, TOP, BOTTOM = "final", "top", "bottom"
_MARKER = re.compile(r"#!(final|top|bottom)\b")
KEY_LINE = re.compile(r"^([A-Za-z_][\w.-]*)\s*:(?:\s+(.*))?$")
_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


# Origins of the pkgs_dirs conda uses when no configuration names any.
DEFAULT_ROOT = "default: <root prefix>/pkgs"
DEFAULT_HOME = "default: ~/.conda/pkgs"
DEFAULT_MAMBA_HOME = "default: ~/.mamba/pkgs"


class CondarcError(ValueError):
    """A config file conda itself would refuse; the message names the file and line."""


class SequenceValue(object):
    """One file's value for a sequence setting: items with their markers, and the key's marker."""

    __slots__ = ("items", "final", "source")

    def __init__(self, items, final, source):
        self.items = items  # list of (value, marker or None)
        self.final = final
        self.source = source


def strip_comment(text):
    """Split ``text`` into (content, marker): the YAML comment is dropped, a conda marker kept."""
    quote = None
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif quote:
            if char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1] in " \t"):
            match = _MARKER.match(text[i:])
            return text[:i].rstrip(), (match.group(1) if match else None)
    if quote:
        raise ValueError("unterminated quoted string")
    return text.rstrip(), None


_DOUBLE_ESCAPES = {"\\": "\\", '"': '"', "/": "/", "t": "\t", "n": "\n", " ": " ", "0": "\0"}
_SINGLE_QUOTED = re.compile(r"^'((?:[^']|'')*)'$")
_DOUBLE_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"$')


def _unescape(match):
    try:
        return _DOUBLE_ESCAPES[match.group(1)]
    except KeyError:
        raise ValueError("unsupported escape \\%s in a double-quoted string" % match.group(1))


def scalar(text):
    """One YAML scalar as conda's YAML reader gives it back: quoted forms with their escapes
    (``''`` in single quotes; ``\\\\``, ``\\"`` and a few more in double quotes), else plain."""
    text = text.strip()
    single = _SINGLE_QUOTED.match(text)
    if single:
        return single.group(1).replace("''", "'")
    double = _DOUBLE_QUOTED.match(text)
    if double:
        return re.sub(r"\\(.)", _unescape, double.group(1))
    if text[:1] in "'\"":
        raise ValueError("unterminated quoted string")
    if text[:1] in "[{&*!|>" or text in ("~", "null", "Null", "NULL"):
        raise ValueError("unsupported YAML value %r" % text)
    return text


def flow_sequence(text):
    if not text.endswith("]"):
        raise ValueError("unterminated flow sequence")
    inner = text[1:-1].strip()
    if not inner:
        return []
    return [scalar(part) for part in inner.split(",")]


def parse_condarc(text, source="<string>", keys=None):
    """Parse a .condarc's top level; return {key: SequenceValue or scalar string or None}.

    Only keys in ``keys`` (default: every sequence setting's aliases) are decoded; other keys are
    validated for structure and skipped.  Raises CondarcError on anything conda would reject.
    """
    if keys is None:
        keys = set(alias for spec in SEQUENCE_SETTINGS.values() for alias in spec[0])
    result = {}
    current = None
    skipping = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        try:
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise ValueError("tab used for indentation")
            content, marker = strip_comment(raw)
            if not content.strip():
                continue
            if content in ("---", "..."):
                continue
            if not content[0].isspace() and not content.startswith("- "):
                match = KEY_LINE.match(content)
                if not match:
                    raise ValueError("expected 'key: value'")
                key = match.group(1)
                value = (match.group(2) or "").strip()
                if key in result:
                    raise ValueError("duplicate key %r" % key)
                current = None
                skipping = key not in keys
                if skipping:
                    result[key] = None
                    continue
                if value.startswith("["):
                    items = [(item, None) for item in flow_sequence(value)]
                    result[key] = SequenceValue(items, marker == FINAL, source)
                elif value:
                    result[key] = scalar(value)
                else:
                    current = SequenceValue([], marker == FINAL, source)
                    result[key] = current
                continue
            stripped = content.strip()
            if skipping:
                continue
            if current is None:
                raise ValueError("unexpected indented text")
            if not (stripped.startswith("- ") or stripped == "-"):
                raise ValueError("expected a '- item' in the sequence")
            current.items.append((scalar(stripped[1:]), marker))
        except ValueError as exc:
            raise CondarcError("%s:%d: %s" % (source, lineno, exc))
    return result


def _expand_user_vars(path, home, env):
    def var(match):
        name = match.group(1) or match.group(2)
        return env.get(name, match.group(0))

    path = _VAR.sub(var, path)
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    return path


def expand(path, home, env):
    """conda's ``expand``: variables, then ``~``, then an absolute normalized path."""
    return os.path.normpath(os.path.abspath(_expand_user_vars(path, home, env)))


def expands_absolute(path, home, env):
    """Whether conda's expansion of ``path`` for this home and environment is absolute on its own.

    A relative entry means whatever directory conda happens to run in, and ``expand`` would make
    it absolute against this process's working directory: never a cache anyone meant."""
    return os.path.isabs(_expand_user_vars(path, home, env))


def search_path(root_prefix, home, env, tool="conda"):
    """The config files conda (or ``tool`` mamba) would read for this root and user, lowest
    precedence first."""
    variables = dict(env)
    variables["CONDA_ROOT"] = root_prefix
    variables.setdefault("XDG_CONFIG_HOME", "")
    variables["CONFIG"] = variables["XDG_CONFIG_HOME"] or os.path.join(home, ".config")
    files = []
    for entry in SEARCH_PATHS[tool]:
        if "$XDG_CONFIG_HOME" in entry and not variables["XDG_CONFIG_HOME"]:
            continue
        if entry.startswith("$CONDA_PREFIX") and not variables.get("CONDA_PREFIX"):
            continue
        if entry in ("$CONDARC", "$MAMBARC") and not variables.get(entry[1:]):
            continue
        path = expand(entry, home, variables)
        if entry.endswith("/"):
            try:
                names = sorted(os.listdir(path))
            except OSError:
                continue
            files.extend(os.path.join(path, n) for n in names if n.endswith((".yml", ".yaml")))
        elif os.path.isfile(path):
            files.append(path)
    return list(_unique(files))


def _unique(items):
    seen = set()
    for item in items:
        if item not in seen:
            seen.add(item)
            yield item


def merge_sequence(matches):
    """conda's SequenceParameter merge over matches in search order (lowest precedence first).

    Matches after the first one marked ``#!final`` are ignored; later files' items come first;
    ``#!top`` items lead and ``#!bottom`` items trail; duplicates keep their first place.
    """
    relevant = []
    for match in matches:
        relevant.append(match)
        if match.final:
            break
    top = [v for m in relevant for v, mark in m.items if mark == TOP]
    bottom = [v for m in reversed(relevant) for v, mark in m.items if mark == BOTTOM]
    lines = [v for m in reversed(relevant) for v, _mark in m.items]
    top_deduped = list(_unique(top + lines))
    bottom_deduped = list(_unique(list(reversed(bottom)) + list(reversed(top_deduped))))
    return list(reversed(bottom_deduped))


class EffectiveConfig(object):
    """pkgs_dirs and envs_dirs as conda computes them for one root prefix and one user."""

    def __init__(self, root_prefix, home, pkgs_dirs, envs_dirs, sources, warnings, origins=None):
        self.root_prefix = root_prefix
        # pkgs_dir -> where it was named: config files, "$VARIABLE"s, or DEFAULT_ROOT/DEFAULT_HOME.
        self.origins = origins or {}
        self.home = home
        self.pkgs_dirs = pkgs_dirs
        self.envs_dirs = envs_dirs
        self.sources = sources
        self.warnings = warnings

    def as_dict(self):
        return {
            "pkgs_dirs": list(self.pkgs_dirs),
            "envs_dirs": list(self.envs_dirs),
            "sources": list(self.sources),
        }


def read_files(files, warnings):
    """Parse each config file once; unreadable or malformed files become warnings.

    A file that is not UTF-8 is read anyway (its odd bytes kept raw, as names on disk are): the
    directories it names are real, and ignoring an ``envs_dirs`` would leave environments unseen."""
    parsed = []
    for path in files:
        try:
            with io.open(open_regular(path, follow=True), **READ_TEXT) as handle:
                text = handle.read()
            parsed.append((path, parse_condarc(text, source=path)))
            if not is_clean(text):
                warnings.append("%s: bytes that are not UTF-8 (conda itself refuses this file), read as raw bytes"
                                % path)
        except (OSError, IOError) as exc:
            warnings.append("cannot read %s: %s" % (path, exc))
        except CondarcError as exc:
            warnings.append("malformed conda config %s" % exc)
    return parsed


def _file_matches(parsed_files, setting, warnings):
    matches = []
    for path, parsed in parsed_files:
        for alias in SEQUENCE_SETTINGS[setting][0]:
            value = parsed.get(alias)
            if isinstance(value, SequenceValue):
                matches.append(value)
            elif value is not None:
                warnings.append("%s: %s must be a list, ignoring %r" % (path, alias, value))
    return matches


def _env_matches(setting, env):
    names, delimiter = SEQUENCE_SETTINGS[setting][1], SEQUENCE_SETTINGS[setting][2]
    matches = []
    for name in names:
        value = env.get(name)
        if value:
            items = [(item.strip(), None) for item in value.split(delimiter) if item.strip()]
            matches.append(SequenceValue(items, False, "$" + name))
    return matches


def resolve(root_prefix, home, env=None, root_writable=True, files=None, tool="conda"):
    """Resolve pkgs_dirs and envs_dirs for ``root_prefix`` as seen by the user whose home is ``home``.

    ``env`` stands for the user's environment (CONDA_* and XDG_* variables); ``files`` overrides
    the search (tests and callers that already listed them).  ``tool`` mamba resolves as
    micromamba does: its search path, and its defaults (``fallback_pkgs_dirs_hook``: the root's
    ``pkgs`` then ``~/.mamba/pkgs``; ``envs_dirs`` gains only the root's ``envs``).
    """
    env = dict(env or {})
    env.setdefault("HOME", home)
    warnings = []
    if files is None:
        files = search_path(root_prefix, home, env, tool)
    parsed_files = read_files(files, warnings)
    result = {}
    sources = set()
    origins = {}
    for setting in SEQUENCE_SETTINGS:
        matches = _file_matches(parsed_files, setting, warnings) + _env_matches(setting, env)
        merged = merge_sequence(matches)
        relevant = []
        for match in matches:
            relevant.append(match.source)
            if setting == "pkgs_dirs":
                for value, _mark in match.items:
                    origins.setdefault(expand(value, home, env), []).append(match.source)
            if match.final:
                break
        sources.update(relevant)
        result[setting] = [expand(p, home, env) for p in merged]
    pkgs_dirs = list(_unique(result["pkgs_dirs"]))
    mamba = tool == "mamba"
    if not pkgs_dirs:
        pkgs_dirs = [os.path.join(root_prefix, "pkgs"), os.path.join(home, ".mamba" if mamba else ".conda", "pkgs")]
        origins = {pkgs_dirs[0]: [DEFAULT_ROOT], pkgs_dirs[1]: [DEFAULT_MAMBA_HOME if mamba else DEFAULT_HOME]}
    fixed = [os.path.join(root_prefix, "envs")] + ([] if mamba else [os.path.join(home, ".conda", "envs")])
    if not root_writable:
        fixed.reverse()
    envs_dirs = list(_unique(result["envs_dirs"] + [os.path.normpath(p) for p in fixed]))
    ordered_sources = [f for f in files if f in sources] + sorted(s for s in sources if s.startswith("$"))
    origins = dict((path, origins.get(path, [])) for path in pkgs_dirs)
    return EffectiveConfig(root_prefix, home, pkgs_dirs, envs_dirs, ordered_sources, warnings, origins)
