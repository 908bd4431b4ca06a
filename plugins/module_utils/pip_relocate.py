# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declare where pip's (or uv's) cache lives and move its content there.

Plan, then act, as ``conda_relocate`` does, and with the same mover (``conda_relocate_move``):
:func:`build_plan` reads the config file of the scope, edits its text (one key; every other line
and comment kept), resolves the cache location before and after the way the tool does for the
user (``pip_cache``'s rules: pip's file order, ``[global]`` under each command's section, ``PIP_*``
variables; uv's ``UV_CACHE_DIR`` over user and system ``uv.toml``), refuses what a source of
higher precedence would override, and plans the move.  :func:`apply` makes the new directory,
then :func:`~conda_relocate_move.carry_out` moves, switches the file, re-resolves and removes the
old copy, journaled and with the config owner's credentials.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import configparser
import os
import re

from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import ROOT, authority, namer_of
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._procs import process_using
from ansible_collections.pkgcache.fleet.plugins.module_utils._removal import ToolLock
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_relocate_move import (
    KINDS, RelocateError, RelocationPlan, actor_of, carry_out_as_actor, check_config_link, check_path_links,
    check_room, check_writable, earlier_run, make_cache_dir, plan_move, read_text_file)
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_cache import (
    CONFIG_BASENAME, UV_LOCK, _normalize_name, config_home, pip_cache_location, uv_cache_location)

ENVIRONMENT_FILE = "/etc/environment"  # read by pam_env for ssh, su and console logins
# Commands whose cache pip resolves: each applies its own section over [global].
PIP_COMMANDS = ("install", "download", "wheel", "cache")
VARIABLE = {"pip": "PIP_CACHE_DIR", "uv": "UV_CACHE_DIR"}
UV_CONFIG = "uv.toml"


class EditError(ValueError):
    """The file cannot be edited safely; the message names it."""


# -- config files as lines --------------------------------------------------------------------


def _lines(text):
    lines = (text or "").splitlines(True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


class IniKey(object):
    """``cache-dir`` in the ``[global]`` section of a pip config file (configparser's syntax:
    ``=`` or ``:``, indented continuation lines, ``#``/``;`` comment lines)."""

    key = "cache-dir"
    section = "global"

    def __init__(self, path):
        self.path = path

    def _parse(self, text):
        parser = configparser.RawConfigParser()
        parser.optionxform = _normalize_name
        try:
            parser.read_string(text or "", source=self.path)
        except configparser.Error as exc:
            raise EditError("refusing to edit %s, pip cannot read it: %s" % (self.path, " ".join(str(exc).split())))
        return parser

    def _spans(self, lines):
        """``[(start, end)]`` of the key's lines (with continuations) in the section."""
        spans, section, index = [], None, 0
        while index < len(lines):
            line = lines[index]
            stripped = line.strip()
            if line[:1] == "[" and stripped.endswith("]"):
                section = stripped[1:-1]
            elif section == self.section and line[:1] not in ("", " ", "\t", "#", ";", "\n", "\r"):
                name = re.split(r"[=:]", line, 1)[0].strip()
                if _normalize_name(name) == self.key:
                    end = index + 1
                    while end < len(lines) and lines[end][:1] in (" ", "\t") and lines[end].strip():
                        end += 1
                    spans.append((index, end))
                    index = end
                    continue
            index += 1
        return spans

    def read(self, text):
        parser = self._parse(text)
        if parser.has_section(self.section) and parser.has_option(self.section, self.key):
            return parser.get(self.section, self.key)
        return None

    def write(self, text, value):
        """``text`` with the key set to ``value`` (None: removed); checked by re-parsing."""
        before = self._parse(text)
        lines = _lines(text)
        spans = self._spans(lines)
        if value is not None:
            line = "%s = %s\n" % (self.key, value)
            if spans:
                start, end = spans[0]
                lines[start:end] = [line]
            elif before.has_section(self.section):
                header = [i for i, l in enumerate(lines) if l.strip() == "[%s]" % self.section and l[:1] == "["][0]
                lines.insert(header + 1, line)
            else:
                lines.extend((["\n"] if lines else []) + ["[%s]\n" % self.section, line])
        else:
            for start, end in reversed(spans):
                del lines[start:end]
        after = "".join(lines)
        self._check(before, self._parse(after), value)
        return after

    def _check(self, before, after, value):
        """Nothing but the key changed, and it reads back as written."""
        def items(parser):
            return dict(((s, k), v) for s in parser.sections() for k, v in parser.items(s)
                        if (s, k) != (self.section, self.key))
        got = after.get(self.section, self.key) if after.has_option(self.section, self.key) else None
        if items(before) != items(after) or got != value:
            raise EditError("%s: the edit would change more than [%s] %s; edit it by hand" % (
                self.path, self.section, self.key))

    def describe(self):
        return "%s [%s] %s" % (self.path, self.section, self.key)


_TOML_KEY = re.compile(r"""^\s*(cache-dir|"cache-dir"|'cache-dir')\s*=\s*(.*?)\s*$""")
_TOML_TABLE = re.compile(r"^\s*\[")


class TomlKey(object):
    """The top-level ``cache-dir`` of a ``uv.toml`` (a string before the first table)."""

    key = "cache-dir"

    def __init__(self, path):
        self.path = path

    def _top(self, lines):
        for index, line in enumerate(lines):
            if _TOML_TABLE.match(line):
                return index
        return len(lines)

    def _spans(self, lines):
        return [i for i in range(self._top(lines)) if _TOML_KEY.match(lines[i])]

    def read(self, text):
        lines = _lines(text)
        found = self._spans(lines)
        if len(found) > 1:
            raise EditError("%s sets %s twice (uv refuses it)" % (self.path, self.key))
        _check_toml(text, self.path)
        return _toml_string(_TOML_KEY.match(lines[found[0]]).group(2), self.path) if found else None

    def write(self, text, value):
        self.read(text)
        lines = _lines(text)
        found = self._spans(lines)
        if value is not None:
            line = '%s = "%s"\n' % (self.key, value.replace("\\", "\\\\").replace('"', '\\"'))
            if found:
                lines[found[0]] = line
            else:
                lines.insert(self._top(lines), line)
        elif found:
            del lines[found[0]]
        after = "".join(lines)
        if self.read(after) != value:
            raise EditError("%s: the edit would not read back as %r; edit it by hand" % (self.path, value))
        return after

    def describe(self):
        return "%s %s" % (self.path, self.key)


def _toml_string(raw, path):
    """A TOML basic or literal string on one line (an inline comment after it allowed)."""
    match = re.match(r'^"((?:[^"\\]|\\.)*)"\s*(#.*)?$', raw)
    if match:
        return re.sub(r'\\(["\\])', r"\1", match.group(1))
    match = re.match(r"^'([^']*)'\s*(#.*)?$", raw)
    if match:
        return match.group(1)
    raise EditError("%s: cache-dir = %s is not a one-line string; edit it by hand" % (path, raw))


def _check_toml(text, path):
    """The whole file is TOML, where the host's Python can tell (3.11 has ``tomllib``)."""
    try:
        import tomllib
    except ImportError:
        return
    try:
        tomllib.loads(text or "")
    except tomllib.TOMLDecodeError as exc:
        raise EditError("refusing to edit %s, it is not TOML: %s" % (path, exc))


_ASSIGNMENT = re.compile(r"^\s*(export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*?)\s*$")
_UNSAFE = re.compile(r"[\"'`$\\\n]")


class EnvLine(object):
    """``NAME=value`` in ``/etc/environment`` (pam_env) or a shell profile snippet (``export``)."""

    def __init__(self, path, name):
        self.path = path
        self.key = name
        self.export = path.endswith(".sh")

    def _spans(self, lines):
        return [i for i, line in enumerate(lines)
                if _ASSIGNMENT.match(line) and _ASSIGNMENT.match(line).group(2) == self.key]

    def read(self, text):
        lines = _lines(text)
        found = self._spans(lines)
        if not found:
            return None
        value = _ASSIGNMENT.match(lines[found[-1]]).group(3)
        if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        return value

    def write(self, text, value):
        if value is not None and _UNSAFE.search(value):
            raise EditError("%s: %r has quotes, $, backslashes or newlines; not written to %s" % (
                self.key, value, self.path))
        lines = _lines(text)
        found = self._spans(lines)
        for index in reversed(found[1:]):  # a later line would win
            del lines[index]
        if value is not None:
            prefix = _ASSIGNMENT.match(lines[found[0]]).group(1) if found else ("export " if self.export else "")
            line = '%s%s="%s"\n' % (prefix or "", self.key, value)
            if found:
                lines[found[0]] = line
            else:
                lines.append(line)
        elif found:
            del lines[found[0]]
        return "".join(lines)

    def variables(self, text):
        """Every assignment the file makes, as pam_env or the shell would leave them."""
        found = {}
        for line in _lines(text):
            match = _ASSIGNMENT.match(line)
            if match:
                found[match.group(2)] = EnvLine(self.path, match.group(2)).read(line)
        return found

    def describe(self):
        return "%s %s" % (self.path, self.key)


# -- the request and the tools' resolution ------------------------------------------------------


class Request(object):
    """What the task asked for, names turned into accounts and the scope into one file.

    ``viewer``: the account whose view is resolved (the scope's user; root for the system and
    environment scopes unless ``user`` names one).  ``homes``: ``[(uid, home)]`` of every account,
    for who a config file's word is and who else shares a cache.
    """

    def __init__(self, tool, scope, viewer, homes, cache_dir, state="present", migrate=False, link_old=False,
                 env_file=ENVIRONMENT_FILE, uid=None, gid=None, mode=None, env=None, others=()):
        if tool not in VARIABLE:
            raise RelocateError("tool must be pip or uv, not %r" % tool)
        if state == "present" and not os.path.isabs(cache_dir or ""):
            raise RelocateError("cache_dir must be an absolute path, not %r" % cache_dir)
        self.tool, self.scope, self.viewer, self.homes = tool, scope, viewer, homes
        self.cache_dir = os.path.normpath(cache_dir) if cache_dir else None
        self.state, self.migrate, self.link_old = state, migrate, link_old
        self.uid, self.gid, self.mode = uid, gid, mode
        self.others = list(others)  # the other accounts, whose caches must not be taken from them
        self.shell_env = dict(env or {})
        self.env_file = os.path.normpath(env_file)
        self.file = self._file()

    def _file(self):
        """The one key in the one file the scope means."""
        home, env = self.viewer.home, self.view_env(self.viewer, {})
        if self.scope == "environment":
            return EnvLine(self.env_file, VARIABLE[self.tool])
        if self.tool == "pip":
            if self.scope == "system":
                return IniKey(os.path.join("/etc", CONFIG_BASENAME))
            return IniKey(os.path.join(config_home(home, env), "pip", CONFIG_BASENAME))
        if self.scope == "system":
            return TomlKey(os.path.join("/etc/uv", UV_CONFIG))
        return TomlKey(os.path.join(config_home(home, env), "uv", UV_CONFIG))

    @property
    def config(self):
        return self.file.path

    def view_env(self, user, texts):
        """The variables a session of ``user`` has: ``/etc/environment`` (and the environment file
        this task writes) as ``texts`` would leave them, under the operator's ``environment``."""
        env = {}
        for path in sorted(set([ENVIRONMENT_FILE, self.env_file])):
            text = texts[path] if path in texts else read_text_file(path)
            env.update(EnvLine(path, "").variables(text))
        env.update(self.shell_env)
        env["HOME"] = user.home
        return env


def resolve(request, user, texts):
    """``{command: (path, source)}``: where ``user``'s tool puts its cache with the files as
    ``texts`` (``{path: text or None}``) would leave them; pip's commands each apply their own
    section, uv has one answer (``cache``)."""
    env = request.view_env(user, texts)
    if request.tool == "pip":
        found = {}
        for command in PIP_COMMANDS:
            where = pip_cache_location(user.home, env, _ignore, command=command, texts=texts)
            if not where["enabled"]:
                found[command] = (None, where["disabled_by"])
            else:
                found[command] = (os.path.normpath(where["configured"]), where["source"])
        return found
    where = uv_cache_location(user.home, env, _ignore, texts=texts)
    return {"cache": (os.path.normpath(where["configured"]), where["source"])}


def _ignore(_message):
    """Resolution warnings are pip_cache_facts' to report; a relocation judges the outcome."""


def _one(found):
    """The one path every command resolves, or None when they differ."""
    paths = set(path for path, _source in found.values())
    return paths.pop() if len(paths) == 1 else None


# -- the plan ---------------------------------------------------------------------------------


class Plan(RelocationPlan):
    """Everything one run does, decided before anything is done; ``before`` and ``after`` are
    :func:`resolve`'s answers with the file as it is and as it will be."""

    def __init__(self, request, before_text, after_text, before, after, create, move, warnings, journal, actor):
        super(Plan, self).__init__(request, request.config, before_text, after_text, create, move, warnings, journal,
                                   actor)
        self.before = before
        self.after = after

    @property
    def expected(self):
        return dict((command, path) for command, (path, _source) in self.after.items())

    def resolve(self):
        """What the tool resolves now, from the files on disk."""
        return dict((command, path) for command, (path, _source) in resolve(self.request, self.request.viewer, {}).items())

    @contextlib.contextmanager
    def holding(self):
        """uv's own cache lock on the old cache, held exclusively for the whole move: a running uv
        neither writes into the cache being moved nor finds it half gone."""
        if self.request.tool != "uv" or self.move is None or not os.path.isdir(self.move.source):
            yield
            return
        with ToolLock(self.move.source, UV_LOCK) as lock:
            if lock.held_by_other:
                raise RelocateError("%s is locked by a running uv: not moving it now" % self.move.source)
            yield

    def as_dict(self):
        result = super(Plan, self).as_dict()
        result.update({
            "tool": self.request.tool,
            "config": self.config,
            "cache_dir_before": _one(self.before),
            "cache_dir": _one(self.after),
            "sources": dict((command, source) for command, (_path, source) in sorted(self.after.items())),
        })
        return result

    def summary(self, check_mode):
        return ["%s: %s cache %s" % (self.config, self.request.tool, _one(self.after))] + super(
            Plan, self).summary(check_mode)


def build_plan(request):
    """Read, decide, refuse: the plan :func:`apply` executes and check mode returns."""
    path = request.config
    check_config_link(path)
    before_text = read_text_file(path)
    wanted = request.cache_dir if request.state == "present" else None
    try:
        after_text = request.file.write(before_text, wanted)
        if after_text == "" and before_text is None:
            after_text = None
        before = resolve(request, request.viewer, {path: before_text})
        after = resolve(request, request.viewer, {path: after_text})
    except EditError as exc:
        raise RelocateError(str(exc))
    if request.state == "present":
        _refuse_overridden(request, after)
    warnings = []
    actor = actor_of(path, request.homes)
    source, dest = _one(before), _one(after)
    create = [dest] if dest and request.state == "present" and not os.path.lexists(dest) else []
    journal = move = None
    if dest and os.path.isdir(dest):
        journal, move = earlier_run(dest, actor, path, before_text, after_text, source, request.migrate,
                                    request.link_old, "same tool, scope, user, cache_dir, migrate and link_old",
                                    warnings)
    if move is None and request.migrate and source and dest and source != dest:
        move = _plan_move(request, before, source, dest, actor, create, journal)
        if move is not None and dest not in create and not os.path.lexists(dest):
            create.append(dest)  # the default a removed setting falls back to
    for made in create:
        check_path_links(made)
        check_writable(made, "create the cache")
    if before_text != after_text:
        check_writable(os.path.dirname(os.path.realpath(path)), "write %s" % path, actor)
    return Plan(request, before_text, after_text, before, after, create, move, warnings, journal, actor)


def _refuse_overridden(request, after):
    """Every command must resolve the requested directory; else name what wins over the file."""
    wrong = ["%s %s %s" % (request.tool, command, "would run without a cache (%s)" % source if where is None
                           else "would use %s (from %s)" % (where, source))
             for command, (where, source) in sorted(after.items()) if where != request.cache_dir]
    if wrong:
        raise RelocateError("after writing %s, %s: a setting of higher precedence wins, change or remove it "
                            "first" % (request.file.describe(), "; ".join(wrong)))


def _plan_move(request, before, source, dest, actor, create, journal):
    """The move of the old cache (None: it does not exist), with every refusal before any change."""
    _refuse_taking_a_shared_cache(request, source)
    if os.path.lexists(source) and os.geteuid() == ROOT:
        _check_source_authority(request, before, source, actor)
    move = plan_move(source, dest, [], link_old=request.link_old, kind=request.tool)
    if move is None:
        return None
    user = process_using(os.path.realpath(source))
    if user is not None:
        raise RelocateError("%s is in use by process %s: not moving it now" % (source, user))
    if dest not in create or actor is None:  # made for the actor, it is theirs to write
        check_writable(dest, "move the cache there", actor)
    check_writable(os.path.dirname(source.rstrip("/")), "take the old cache away", actor)
    check_room(move, walk(journal.staging).on_disk if journal is not None else 0)
    return move


def _origin_namer(request, origin):
    """The uid whose word a cache location is: a config file's writer, the user for their
    default, root (the operator) for a variable."""
    if origin in ("default", "XDG_CACHE_HOME"):
        return request.viewer.uid
    if " " in origin:  # "<file> [section]" or "<file> cache-dir"
        return namer_of(origin.rsplit(" ", 1)[0], request.homes)
    return ROOT


def _check_source_authority(request, before, source, actor):
    """Only a cache that is the config owner's to give is moved (the removal pipeline's rule)."""
    origin = [s for path, s in before.values() if path == source][0]
    identity, _expect, why = authority(source, [(source, _origin_namer(request, origin))])
    if why is not None:
        raise RelocateError("%s: not moving it for %s: %s" % (source, request.viewer.name, why))
    if identity.uid != (ROOT if actor is None else actor.uid):
        raise RelocateError("%s is %s's cache, while %s is %s's: not moving it on that file's word" % (
            source, identity.name, request.config, "root" if actor is None else actor.name))


def _refuse_taking_a_shared_cache(request, source):
    """A user's own config must not take away a cache other users' tool also resolves."""
    if request.scope != "user":
        return
    real = os.path.realpath(source)
    others = sorted(user.name for user in request.others
                    if real in [os.path.realpath(p) for p, _s in resolve(request, user, {}).values() if p])
    if others:
        raise RelocateError("%s is also the %s cache of %s; moving it for %s alone would take it from them: "
                            "use scope=system, or migrate=false" % (
                                source, request.tool, ", ".join(others), request.viewer.name))


def apply(plan):
    """Execute ``plan``; returns ``{command: path}`` the tool now resolves.  The new directory is
    made by this process for the config's owner; the rest runs with their credentials."""
    request = plan.request
    uid, gid = request.uid, request.gid
    if plan.actor is not None and uid is None:
        uid, gid = plan.actor.uid, plan.actor.gid
    for path in plan.create:
        make_cache_dir(path, uid, gid, request.mode, markers=KINDS[request.tool].markers)
        plan.done.add("created")
    return carry_out_as_actor(plan)
