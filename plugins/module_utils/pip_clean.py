# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cleanup of pip and uv caches: purge, wheel patterns and age-based pruning, planned first.

pip's rules are those of ``pip cache remove``/``purge`` (``pip/_internal/commands/cache.py``):
a pattern selects wheel files (``<pattern>-*.whl``, or ``<pattern>*.whl`` when it holds a ``-``),
``*`` (purge) adds every file of ``http-v2`` and ``http``; afterwards every directory left without
files (``http-v2``, ``http``) or without wheels (``wheels``, where ``origin.json`` goes with its
wheel) is removed, the part directory included, and the legacy ``selfcheck.json`` too.  Age-based
pruning applies the same tidy rule to what it selects.  uv caches are pruned or cleared as uv
itself does it (``uv_clean``).

Everything is decided from one ``lstat`` walk per part (symlinks are entries, never followed), the
plan lists what goes with its bytes, and execution removes exactly the planned paths through
the cleanup pipeline -- check mode stops before that step.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import functools
import os
import posixpath
import stat
import time
from contextlib import ExitStack

from ansible_collections.pkgcache.fleet.plugins.module_utils import cleanup, options, uv_clean
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import ROOT, namer_of
from ansible_collections.pkgcache.fleet.plugins.module_utils._removal import ToolLock
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import CachePlan
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import OptionError, parse_duration
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import format_duration as _duration_text
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_cache import (
    DEFAULT_SOURCES, ENV_SOURCES, pip_cache_location, uv_cache_location)

HTTP_PARTS = ("http-v2", "http")
WHEELS = "wheels"
SELFCHECK = "selfcheck"
LEGACY_SELFCHECK = "selfcheck.json"
BODY_SUFFIX = ".body"


class Request(object):
    """What to clean, validated: a pip action (at most one) and/or a uv action (``uv_clean.ACTIONS``)."""

    def __init__(self, purge=False, patterns=(), min_age=None, uv=None, include_selfcheck=False, now=None,
                 target=None):
        self.purge = purge
        self.patterns = list(patterns)
        self.min_age = min_age
        self.uv = uv
        self.include_selfcheck = include_selfcheck
        self.now = time.time() if now is None else now
        self.target = target or None  # a cleanup.Target: what is selected is then taken oldest-first

    @classmethod
    def from_options(cls, purge=False, patterns=(), min_age=None, uv=None, include_selfcheck=False, now=None,
                     target=None):
        """Build a request from user input; OptionError says what is wrong before anything is read."""
        chosen = [name for name, value in (("purge", purge), ("patterns", patterns), ("min_age", min_age is not None))
                  if value]
        if len(chosen) > 1:
            raise OptionError("%s cannot be combined: choose one way to clean pip caches" % " and ".join(chosen))
        if not chosen and not uv:
            raise OptionError("nothing to do: set purge, patterns, min_age or uv")
        if uv and uv not in uv_clean.ACTIONS:
            raise OptionError("uv=%s is not one of %s" % (uv, ", ".join(uv_clean.ACTIONS)))
        if include_selfcheck and not purge:
            raise OptionError("include_selfcheck only applies to purge")
        for pattern in patterns:
            if not pattern or "/" in pattern:
                raise OptionError("pattern %r is not a wheel file name glob (like numpy, numpy-1.*, *-cp311-*)" % pattern)
        return cls(purge, patterns, parse_duration(min_age, "min_age"), uv or None, include_selfcheck, now, target)

    @property
    def cleans_pip(self):
        return bool(self.purge or self.patterns or self.min_age is not None)


def age_reason(seconds):
    return "older than %s" % _duration_text(seconds)


# -- the tree ----------------------------------------------------------------------------------


class Node(object):
    """One entry of a cache from a single ``lstat``; directories hold their children by name.

    A pinned node (unreadable, or on another filesystem) is never removed and keeps its parents.
    """

    __slots__ = ("relpath", "st", "children", "pinned")

    def __init__(self, relpath, st):
        self.relpath = relpath
        self.st = st
        self.children = [] if stat.S_ISDIR(st.st_mode) else None
        self.pinned = False

    @property
    def name(self):
        return posixpath.basename(self.relpath)

    @property
    def is_dir(self):
        return self.children is not None

    def walk(self):
        """This node and everything below it, parents before children, children by name."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            if node.children:
                stack.extend(reversed(node.children))

    def usage(self):
        total = DiskUsage()
        for node in self.walk():
            total.add(node.st)
        return total


def scan(cache, relpath, warn):
    """The tree at ``cache/relpath``, or None when absent.  Never follows a symlink and stays on the
    filesystem of ``relpath``; a directory that cannot be listed is pinned, with a warning."""
    try:
        st = os.lstat(os.path.join(cache, relpath))
    except FileNotFoundError:
        return None
    root = Node(relpath, st)
    stack = [root] if root.is_dir else []
    while stack:
        node = stack.pop()
        try:
            with os.scandir(os.path.join(cache, node.relpath)) as listing:
                entries = sorted(((e.name, e.stat(follow_symlinks=False)) for e in listing), key=lambda pair: pair[0])
        except OSError as exc:
            warn("cannot read %s: %s; left as it is" % (os.path.join(cache, node.relpath), " ".join(str(exc).split())))
            node.pinned = True
            continue
        for name, child_st in entries:
            child = Node(node.relpath + "/" + name, child_st)
            if child.is_dir and child_st.st_dev != root.st.st_dev:
                child.pinned, child.children = True, []
            node.children.append(child)
            if child.is_dir and not child.pinned:
                stack.append(child)
    return root


# -- the plan ----------------------------------------------------------------------------------


def wheel_glob(pattern):
    """pip's pattern -> file name glob: a name gets ``-*.whl``, a name with a version ``*.whl``."""
    return pattern + ("*.whl" if "-" in pattern else "-*.whl")


# What `pip cache list` and `purge` count as a wheel.
ANY_WHEEL = wheel_glob("*")


def _http_entries(directory):
    """A directory's files grouped as cache entries: ``<key>`` with its ``<key>.body`` is one."""
    files = dict((node.name, node) for node in directory.children if not node.is_dir)
    bodies = set(name for name in files if name.endswith(BODY_SUFFIX) and name[:-len(BODY_SUFFIX)] in files)
    for name, node in sorted(files.items()):
        if name in bodies:
            continue
        body = files.get(name + BODY_SUFFIX) if not name.endswith(BODY_SUFFIX) else None
        yield [node, body] if body is not None else [node]


def _age_candidates(part, root):
    """Entries that age: HTTP responses (with their bodies) and the wheels pip lists."""
    if part == WHEELS:
        return [[node] for node in root.walk() if not node.is_dir and fnmatch.fnmatchcase(node.name, ANY_WHEEL)]
    return [entry for directory in root.walk() if directory.is_dir for entry in _http_entries(directory)]


def _select_pip(part, root, request):
    """``{relpath: reason}`` of the files the request selects in one pip part."""
    files = [node for node in root.walk() if not node.is_dir]
    if request.min_age is not None:
        reason = age_reason(request.min_age)
        old = [e for e in _age_candidates(part, root) if request.now - max(n.st.st_mtime for n in e) >= request.min_age]
        return dict((node.relpath, reason) for entry in old for node in entry)
    if part in HTTP_PARTS:
        if request.purge or "*" in request.patterns:
            reason = "purge" if request.purge else "pattern '*' (pip removes HTTP files too)"
            return dict((node.relpath, reason) for node in files)
        return {}
    globs = [(ANY_WHEEL, "purge")] if request.purge else [(wheel_glob(p), "pattern %r" % p) for p in request.patterns]
    selected = {}
    for node in files:
        for glob, reason in globs:
            if fnmatch.fnmatchcase(node.name, glob):
                selected[node.relpath] = reason
                break
    return selected


def _keeps_dir(part, node, selected):
    """pip's tidy rule: whether a file that stays keeps its directory (any file in ``http-v2`` and
    ``http``, only wheels in ``wheels``)."""
    if node.relpath in selected:
        return False
    return part in HTTP_PARTS or node.name.endswith(".whl")


def _remove(plan, node, reason, unit=None):
    plan.remove(node.relpath, reason, node.usage(), unit=unit)


# More than one cache entry below a directory.
_MANY = object()


def _entry_of(part, node):
    """The cache entry a selected file belongs to: an HTTP response is its metadata file and its
    ``.body``, a wheel its file."""
    if part in HTTP_PARTS and node.name.endswith(BODY_SUFFIX):
        return node.relpath[:-len(BODY_SUFFIX)]
    return node.relpath


def _tidy(part, root, selected, whole=True):
    """``[(node, reason, unit)]`` to remove from one part: directories with nothing left to keep go
    whole, else their selected files one by one (an HTTP entry's metadata before its body), each
    in the unit of its entry.  Unless ``whole``, a directory goes whole only when it holds at
    most one entry, so that a target can stop between entries."""
    remains, entries = {}, {}
    for node in reversed(list(root.walk())):
        if node.is_dir:
            remains[node.relpath] = node.pinned or any(remains[c.relpath] for c in node.children)
            below = None
            for child in node.children:
                theirs = entries[child.relpath]
                below = theirs if below is None or below == theirs else (_MANY if theirs is not None else below)
            entries[node.relpath] = below
        else:
            remains[node.relpath] = _keeps_dir(part, node, selected)
            entries[node.relpath] = _entry_of(part, node) if node.relpath in selected else None
    items = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_dir and not remains[node.relpath] and (whole or entries[node.relpath] is not _MANY):
            reasons = [selected[n.relpath] for n in node.walk() if n.relpath in selected]
            tidy = "left without wheels" if part == WHEELS else "left without files"
            items.append((node, reasons[0] if reasons else tidy, node.relpath))
        elif node.is_dir:
            stack.extend(reversed(node.children))
        elif node.relpath in selected:
            items.append((node, selected[node.relpath], entries[node.relpath]))
    return items


def plan_pip(plan, request, warn):
    """pip's parts by the request, then pip's tidy rule; the legacy ``selfcheck.json`` goes as
    in every ``pip cache remove``, ``selfcheck/`` only when asked for."""
    for part in HTTP_PARTS + (WHEELS,):
        root = scan(plan.path, part, warn)
        if root is None:
            continue
        if not root.is_dir:
            plan.keep("%s is not a directory" % part)
            continue
        selected = _select_pip(part, root, request)
        for node, reason, unit in _tidy(part, root, selected, whole=not request.target):
            _remove(plan, node, reason, unit)
        if request.min_age is not None:
            young = sum(1 for entry in _age_candidates(part, root) if entry[0].relpath not in selected)
            if young:
                plan.keep("newer than %s" % _duration_text(request.min_age), count=young)
    legacy = scan(plan.path, LEGACY_SELFCHECK, warn)
    if legacy is not None and stat.S_ISREG(legacy.st.st_mode):
        _remove(plan, legacy, "legacy state file pip removes")
    if request.include_selfcheck:
        selfcheck = scan(plan.path, SELFCHECK, warn)
        if selfcheck is not None:
            _remove(plan, selfcheck, "purge with include_selfcheck")


def owner_reason(path, users):
    """Why a cache must not be cleaned for these users: its directory belongs to someone else
    (a user pointing their cache at another account's files), or None."""
    st = os.lstat(path)
    owners = set([0] + [user.uid for user in users])
    if st.st_uid not in owners:
        return "owned by uid %d, neither root nor a user of it (%s)" % (st.st_uid, ", ".join(u.name for u in users))
    return None


def _route(resolved, user, homes):
    """``(path as configured, uid that named it)`` for one user's view of a cache: a config
    file is its writer's word, a default the user's, the module's ``environment`` the operator's
    (root's; the path it leads through is still checked, see ``_authority``)."""
    source = resolved["source"]
    if source in DEFAULT_SOURCES:
        namer = user.uid
    elif source in ENV_SOURCES:
        namer = ROOT
    else:
        namer = namer_of(source.rsplit(" [", 1)[0], homes)
    return resolved["configured"], namer


def locate(users, env, warn, request):
    """``[(path, tool, [users], [routes])]`` of the existing caches the request cleans, each once."""
    found = {}
    homes = [(user.uid, user.home) for user in users]
    for user in users:
        views = []
        if request.cleans_pip:
            views.append(("pip", pip_cache_location(user.home, env, warn)))
        if request.uv:
            views.append(("uv", uv_cache_location(user.home, env, warn)))
        for tool, resolved in views:
            owners, routes = found.setdefault((os.path.realpath(resolved["configured"]), tool), ([], []))
            owners.append(user)
            route = _route(resolved, user, homes)
            if route not in routes:
                routes.append(route)
    return [(path, tool, owners, routes) for (path, tool), (owners, routes) in sorted(found.items())
            if os.path.isdir(path)]


def plan_cache(path, tool, users, routes, request, warn, locks, env):
    """The plan for one cache.  A uv cache is planned under uv's lock; that lock is entered into
    ``locks`` and held until the caller closes it when we remove ourselves, released at once when
    the host's ``uv`` does it (it takes the lock itself)."""
    plan = CachePlan(path, tool, users)
    plan.cleaner = None  # the host's uv that cleans a uv cache, when one is found; else we do
    plan.skipped = owner_reason(path, users)
    if plan.skipped or not plan.authorize(routes):
        return plan
    if tool == "pip":
        plan_pip(plan, request, warn)
        return plan
    if not os.path.isfile(os.path.join(path, uv_clean.TAG)):
        plan.skipped = "no %s: not a uv cache" % uv_clean.TAG
        return plan
    binary = uv_clean.find_uv(plan.identity, [(user.uid, user.home) for user in users], env)
    plan.cleaner = binary
    if binary is None and request.uv == "clean":
        plan.skipped = "uv cache clean needs uv on the host for %s; nothing of it is removed" % plan.identity.name
        return plan
    with ExitStack() as held:
        lock = held.enter_context(ToolLock(path, uv_clean.LOCK))
        if lock.held_by_other:
            plan.skipped = "uv's cache lock: %s" % lock.held_by_other
            return plan
        planner = uv_clean.plan_prune if request.uv == "prune" else uv_clean.plan_clean
        unit = "uv cache %s" % request.uv if binary else None
        planner(plan, scan, warn, lambda p, node, reason: _remove(p, node, reason, unit))
        if binary:
            plan.remover = functools.partial(uv_clean.run_uv, binary, request.uv)
        else:
            locks.enter_context(held.pop_all())
    return plan


def plan(users, env, request, warn, locks):
    """The plans for the users' pip/uv caches; the locks they hold are entered into ``locks``."""
    return [plan_cache(path, tool, owners, routes, request, warn, locks, env)
            for path, tool, owners, routes in locate(users, env, warn, request)]


def annotate(caches, plans, check_mode):
    """pip_cache_clean's own keys on its caches' result entries (``tool``, ``kept`` by reason,
    ``cleaned_by``, ``left_by_uv``)."""
    for p, cache in zip(plans, caches):
        cache["tool"] = cache["kind"]
        cache["kept"] = dict((group["reason"], group["count"]) for group in cache["keep"])
        cache["cleaned_by"] = p.cleaner or "pkgcache.fleet"
        removed = set(p.removed)
        ran_uv = p.cleaner and not check_mode
        cache["left_by_uv"] = [path for path in p.paths if path not in removed] if ran_uv else []


def clean(users, env, request, warn, check_mode=False):
    """Plan the cleanup of the users' pip/uv caches and, unless ``check_mode``, execute it (cut
    down to the request's target): the pipeline's result (:func:`cleanup.run`); ``planned_bytes``
    counts each inode once over all caches."""
    with ExitStack() as locks:
        plans = plan(users, env, request, warn, locks)
        result = cleanup.run(plans, check_mode, target=request.target)
    annotate(result["caches"], plans, check_mode)
    return result


def argument_spec():
    """pip_cache_clean's options (the module's argument spec, and the local command's flags)."""
    return options.argument_spec(
        options.USERS, options.ENVIRONMENT, options.COMPACT, options.TARGET,
        purge=dict(type="bool", default=False),
        include_selfcheck=dict(type="bool", default=False),
        patterns=dict(type="list", elements="str", default=[]),
        min_age=options.duration(),
        uv=dict(type="str", choices=list(uv_clean.ACTIONS)),
    )


def load(params):
    """pip_cache_clean's options read: ``(users, environment, Request)``; OptionError before anything is read."""
    request = Request.from_options(params["purge"], params["patterns"], params["min_age"], params["uv"],
                                   params["include_selfcheck"], target=cleanup.Target.from_options(params))
    users = options.select_users(params["users"])
    options.check_sight(users)
    return users, options.shell_environment(params["environment"]), request


def clean_from_options(params, warn, check_mode):
    """What pip_cache_clean does with its options; OptionError before anything is read."""
    users, env, request = load(params)
    return clean(users, env, request, warn, check_mode)
