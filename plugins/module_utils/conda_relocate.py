# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declare ``pkgs_dirs`` for one config scope and move the first cache's content to its new home.

Plan, then act.  :func:`build_plan` reads everything (config files, environments, the old cache)
and decides: the new ``.condarc`` text, which cache directories to create, and the move (rename on
one filesystem, verified copy across two).  It refuses what would break or fill something before
anything is touched.  :func:`apply` executes that plan in an order that keeps every failure
recoverable: dirs, then the move into the new cache (staged, verified), then the config switch,
then the re-resolved config is checked, and only then is the old cache removed.  Before the
switch a failure undoes the move and leaves config and old cache as they were; after it, the new
cache is complete and the message says what is left of the old one.  Each step is first written
to the move's :class:`Journal`, so a run killed anywhere is rolled back or finished by the rerun
of the same task.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_config
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_config_edit import (
    KEY, EditError, expand_all, judge, read_items, resolve_with, set_items, wanted_items)
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import ROOT, authority
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import inside
from ansible_collections.pkgcache.fleet.plugins.module_utils._procs import process_using
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host, config_routes
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import CACHE_MARKERS, Installation, is_prefix
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_relocate_move import (
    RelocateError, RelocationPlan, actor_of, carry_out_as_actor, check_config_link, check_destination, check_path_links,
    check_room, check_writable, earlier_run, make_cache_dir, plan_move, read_text_file)


class Request(object):
    """What the task asked for, with names already turned into users, uids and absolute paths.

    ``viewer`` is the account whose view of the configuration is resolved (the scope's user, or
    root for the system scope); ``users`` are every account whose environments must keep working.
    """

    def __init__(self, root, condarc, viewer, users, pkgs_dirs, state="present", migrate=False,
                 link_old=False, extracted="move", uid=None, gid=None, mode=None, env=None):
        self.root = os.path.normpath(root)
        self.condarc = os.path.normpath(condarc)
        self.viewer = viewer
        self.users = users
        self.pkgs_dirs = list(pkgs_dirs)
        self.state = state
        self.migrate = migrate
        self.link_old = link_old
        self.extracted = extracted
        self.uid, self.gid, self.mode = uid, gid, mode
        self.shell_env = dict(env or {})  # the operator's, for every user's view
        self.env = dict(self.shell_env)
        # conda expands $HOME in config values from the viewer's environment.
        self.env.setdefault("HOME", viewer.home)
        relative = [p for p in self.pkgs_dirs if not conda_config.expands_absolute(p, viewer.home, self.env)]
        if relative and state == "present":
            raise RelocateError("pkgs_dirs entries must be absolute paths, or start with ~ or a $VARIABLE that "
                                "expands to one for %s; refusing %s"
                                % (viewer.name, ", ".join(repr(p) for p in relative)))


def view_of(request, user):
    """The same request resolved as ``user`` sees it (their home, their ``$HOME``)."""
    view = copy.copy(request)
    view.viewer = user
    view.env = dict(request.shell_env)
    view.env.setdefault("HOME", user.home)
    return view


def condarc_path(scope, root, home=None, explicit=None):
    """The file a scope writes: ``<root>/.condarc``, ``~user/.condarc`` or the explicit path."""
    if explicit:
        return os.path.normpath(explicit)
    if scope == "system":
        return os.path.join(root, ".condarc")
    if scope == "user" and home:
        return os.path.join(home, ".condarc")
    raise RelocateError("scope %r needs %s" % (scope, "a user" if scope == "user" else "a condarc path"))


# -- the whole plan --------------------------------------------------------------------------


class Plan(RelocationPlan):
    """Everything one task run will do, computed before anything is done."""

    def __init__(self, request, before_text, after_text, before, after, create, move, warnings, journal=None,
                 actor=None):
        super(Plan, self).__init__(request, request.condarc, before_text, after_text, create, move, warnings, journal,
                                   actor)
        self.before = before
        self.after = after
        self.left_behind = []  # caches no config will name any more, still holding packages

    @property
    def expected(self):
        return list(self.after.config.pkgs_dirs)

    def resolve(self):
        """The pkgs_dirs conda resolves now for the viewer."""
        request, viewer = self.request, self.request.viewer
        return list(conda_config.resolve(request.root, viewer.home, request.env,
                                         Installation(request.root).writable_by(viewer)).pkgs_dirs)

    def as_dict(self):
        result = super(Plan, self).as_dict()
        result.update({
            "condarc": self.request.condarc,
            "pkgs_dirs_before": list(self.before.config.pkgs_dirs),
            "pkgs_dirs": list(self.after.config.pkgs_dirs),
            "sources": list(self.after.config.sources),
            "left_behind": list(self.left_behind),
        })
        return result

    def more_steps(self):
        return "".join(describe_left_behind(entry) + "\n" for entry in self.left_behind)

    def summary(self, check_mode):
        parts = ["%s: pkgs_dirs %s" % (self.request.condarc, " ".join(self.after.config.pkgs_dirs))]
        parts.extend(super(Plan, self).summary(check_mode))
        if self.left_behind:
            parts.append("%s %d cache(s) (%s) in no pkgs_dirs" % (
                "would leave" if check_mode else "left", len(self.left_behind),
                human_bytes(sum(entry["disk_bytes"] for entry in self.left_behind))))
        return parts


def build_plan(request):
    """Read, decide, refuse: the plan :func:`apply` executes (and check mode returns)."""
    if not is_prefix(request.root):
        raise RelocateError("%s is not a conda installation (no conda-meta/history)" % request.root)
    check_config_link(request.condarc)
    before_text = read_text_file(request.condarc)
    try:
        current = read_items(before_text or "", KEY, request.condarc)
        items = wanted_items(current, request.pkgs_dirs, request.state)
        after_text = before_text if items == current else set_items(before_text or "", items, KEY, request.condarc)
        before = resolve_with(request, before_text)
        after = resolve_with(request, after_text)
    except EditError as exc:
        raise RelocateError(str(exc))
    errors, warnings = judge(request, items, after)
    if errors:
        raise RelocateError("; ".join(errors))
    warnings = after.config.warnings + warnings
    host = Host(request.users, [request.root], request.shell_env).resolve_configs().load_environments()
    roots = set(os.path.realpath(i.root) for i in host.installations) | set([os.path.realpath(request.root)])
    wanted = expand_all(request, items)
    create = [d for d in wanted if not os.path.lexists(d)] if request.state == "present" else []
    actor = actor_of(request.condarc, host.homes())
    journal = move = None
    if request.state == "present" and after.config.pkgs_dirs:
        journal, move = earlier_run(
            after.config.pkgs_dirs[0], actor, request.condarc, before_text, after_text,
            before.config.pkgs_dirs[0] if before.config.pkgs_dirs else None, request.migrate, request.link_old,
            "same root, condarc, pkgs_dirs, migrate and link_old", warnings)
    if move is None and request.migrate and before.config.pkgs_dirs and after.config.pkgs_dirs:
        source, dest = before.config.pkgs_dirs[0], after.config.pkgs_dirs[0]
        _refuse_taking_a_shared_cache(request, host, source)
        if os.path.lexists(source) and os.geteuid() == ROOT:
            _check_source_authority(request, host, before.config, source, actor)
        move = plan_move(source, dest, host.environments, request.extracted, request.link_old)
        if move is not None:
            if request.extracted == "drop" and move.method == "rename":
                warnings.append("extracted=drop does nothing on one filesystem: the rename moves every package for free")
            check_destination(dest, host.environments, roots)
            _refuse_busy(request.root, source)
            if dest not in create or actor is None:  # made for the actor, it is theirs to write
                check_writable(dest, "move the cache there", actor)
            check_writable(os.path.dirname(source.rstrip("/")), "take the old cache away", actor)
            check_room(move, walk(journal.staging).on_disk if journal is not None else 0)
    for path in create:
        check_destination(path, host.environments, roots)
        check_path_links(path)
        check_writable(path, "create the cache")
    if before_text != after_text:
        check_writable(os.path.dirname(os.path.realpath(request.condarc)), "write %s" % request.condarc, actor)
    plan = Plan(request, before_text, after_text, before, after, create, move, warnings, journal, actor)
    if before_text != after_text:
        plan.left_behind = left_behind(request, host, after_text, move)
        warnings.extend(describe_left_behind(entry) for entry in plan.left_behind)
    return plan


def _installation(request, host):
    """The Host's Installation of ``request.root`` (build_plan checked it is one)."""
    return [i for i in host.installations if os.path.realpath(i.root) == os.path.realpath(request.root)][0]


def left_behind(request, host, after_text, move):
    """``[{path, users, disk_bytes}]``: caches some user's conda lists now and no user's would
    after the change, that stay on disk with packages in them (invisible then to conda, to facts
    and to cleaning).  The cache the move takes is not one."""
    inst = _installation(request, host)
    users = dict((user.name, user) for user in host.users)
    before, after = {}, set()
    for name, config in sorted(inst.configs.items()):
        now = [os.path.realpath(p) for p in config.pkgs_dirs]
        for path, real in zip(config.pkgs_dirs, now):
            before.setdefault(real, (path, []))[1].append(name)
        try:
            later = resolve_with(view_of(request, users[name]), after_text).config.pkgs_dirs
        except EditError:  # conda does not read this file for them: their view stays as it is
            later = config.pkgs_dirs
        after.update(os.path.realpath(p) for p in later)
    taken = os.path.realpath(move.source) if move else None
    found = []
    for real, (path, names) in sorted(before.items()):
        if real in after or real == taken or not os.path.isdir(real):
            continue
        if not [n for n in os.listdir(real) if n not in CACHE_MARKERS]:
            continue
        found.append({"path": path, "users": names, "disk_bytes": walk(real).on_disk})
    return found


def describe_left_behind(entry):
    return "left behind: %s (%s, used by %s) is in no pkgs_dirs after this change; move or remove it" % (
        entry["path"], human_bytes(entry["disk_bytes"]), ", ".join(entry["users"]))


def _check_source_authority(request, host, config, source, actor):
    """A move only takes a cache that is the config owner's to give: a ``pkgs_dirs`` entry (or a
    symlink) leading to root's or another user's directory is refused, with the reason."""
    inst = _installation(request, host)
    identity, _expect, why = authority(source, config_routes(config, source, inst, request.viewer, host.homes()))
    if why is not None:
        raise RelocateError("%s: not moving it for %s: %s" % (source, request.viewer.name, why))
    if identity.uid != (ROOT if actor is None else actor.uid):
        raise RelocateError("%s is %s's cache, while %s is %s's: not moving it on that file's word" % (
            source, identity.name, request.condarc, "root" if actor is None else actor.name))


def _refuse_taking_a_shared_cache(request, host, source):
    """A move for one user's own config (a ``.condarc`` in their home) must not take away a cache
    other users' conda still lists: it would vanish from under them.  The system scope moves it
    for everyone."""
    viewer = request.viewer
    if viewer.uid == 0 or not inside(os.path.realpath(request.condarc), os.path.realpath(viewer.home)):
        return
    real = os.path.realpath(source)
    others = sorted(set(name for inst in host.installations for name, config in inst.configs.items()
                        if name != viewer.name and real in [os.path.realpath(p) for p in config.pkgs_dirs]))
    if others:
        raise RelocateError("%s is also the package cache of %s (their conda lists it); moving it for %s alone "
                            "would take it from them: move it with scope=system, or set migrate=false to only "
                            "change %s's pkgs_dirs" % (source, ", ".join(others), viewer.name, viewer.name))


def _refuse_busy(root, source):
    for path in (root, source):
        user = process_using(os.path.realpath(path))
        if user is not None:
            raise RelocateError("%s is in use by process %s: not moving its cache now" % (path, user))


def apply(plan):
    """Execute ``plan``; returns the pkgs_dirs conda now resolves.  ``plan.done`` says what
    changed and stayed changed, also when this raises.

    The cache dirs the task names are made first, by this process; the rest runs with
    ``plan.actor``'s credentials."""
    request = plan.request
    uid, gid = request.uid, request.gid
    if plan.actor is not None and uid is None:
        uid, gid = plan.actor.uid, plan.actor.gid  # the cache is made for whoever's config names it
    for path in plan.create:
        make_cache_dir(path, uid, gid, request.mode)
        plan.done.add("created")
    return carry_out_as_actor(plan)
