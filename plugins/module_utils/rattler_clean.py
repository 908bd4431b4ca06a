# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cleanup of pixi / rattler caches: every package of ``pkgs`` that no environment found uses goes,
with its ``.lock``; decided on ``rattler_cache``'s model and handed to the cleanup pipeline.

rattler holds ``pkgs/.cache.lock`` (``flock``) during an install; we take it non-blocking before
planning and hold it until the removal ends, and skip a cache whose lock is held.  A search for
environments that stopped short (time, an unreadable directory or record) skips every cache, since
a package could then look unused.

With ``verify_environments`` the environments found whose records name anything in a cache the
plan removes from are checked before and after, as conda's are (``conda_envs.verified_run``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import posixpath
from contextlib import ExitStack

from ansible_collections.pkgcache.fleet.plugins.module_utils import cleanup, conda_envs, options
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import inside
from ansible_collections.pkgcache.fleet.plugins.module_utils._removal import ToolLock
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import CachePlan
from ansible_collections.pkgcache.fleet.plugins.module_utils.rattler_cache import (
    GLOBAL_LOCK, PKGS, SEARCH, TOOL, Search, find_environments, is_real_dir, locate, package_entries)


def plan_cache(root, owners, routes, environments, warn, locks):
    """The plan for one cache's ``pkgs``: every package no environment found uses, with its
    ``.lock``; rattler's lock is entered into ``locks`` and held until the caller closes it."""
    pkgs = posixpath.join(root, PKGS)
    plan = CachePlan(pkgs, TOOL, owners)
    if not is_real_dir(pkgs):
        plan.skipped = "no %s directory (a symlink is not followed)" % PKGS
        return plan
    if environments.incomplete:
        plan.skipped = "environments may be missing (%s); nothing is called unused" % "; ".join(environments.incomplete[:3])
        return plan
    # The routes name the cache root; what is emptied, and must be theirs to empty, is its pkgs.
    if not plan.authorize([(posixpath.join(named, PKGS), namer) for named, namer in routes]):
        return plan
    lock = locks.enter_context(ToolLock(pkgs, GLOBAL_LOCK))
    if lock.held_by_other:
        plan.skipped = "rattler's cache lock: %s (an install may be running)" % lock.held_by_other
        return plan
    for entry in package_entries(pkgs, environments, warn)[0]:
        if entry.users:
            more = len(entry.users) - 1
            plan.keep("used by %s%s" % (entry.users[0], " and %d more environment(s)" % more if more else ""),
                      entry.path, "package")
            continue
        whole = entry.usage
        if entry.lock:
            # The directory and its .lock go together; the lock's bytes ride on the directory's item.
            plan.remove(entry.name, "no environment found uses it", whole, "package", entry.name)
            plan.remove(entry.lock, "the lock of %s" % entry.name, DiskUsage(), "package", entry.name)
        else:
            plan.remove(entry.name, "no environment found uses it", whole, "package")
    return plan


def plan(users, env, search, warn, locks):
    """``(plans, environments)``: the plans for the users' rattler caches, whose locks are entered
    into ``locks``, and the environments searched."""
    environments = find_environments(users, env, search)
    for reason in environments.incomplete:
        warn(reason)
    return [plan_cache(root, owners, routes, environments, warn, locks)
            for root, owners, routes in locate(users, env, warn)], environments


def touched_environments(plans, environments):
    """The environments found whose records name a path in a cache the plans remove from (as
    ``conda_envs.Environment``): what a removal there could break, were a record to name less
    than the environment links (a file soft-linked from a package no record names)."""
    removing = set()
    for cache in plans:
        if cache.items and not cache.skipped:
            removing.update((posixpath.normpath(cache.path), os.path.realpath(cache.path)))
    touched = set()
    for path, prefixes in environments.referenced.items():
        if any(inside(path, pkgs) for pkgs in removing):
            touched.update(prefixes)
    return [found for found in (conda_envs.prefix_environment(prefix) for prefix in sorted(touched)) if found]


def clean(users, env, search, warn, check_mode=False, target=None, verify=False):
    """Plan the cleanup of the users' rattler caches and, unless ``check_mode``, execute it: the
    pipeline's result (:func:`cleanup.run`) with the ``environments`` searched and, with
    ``verify``, the ``verified_environments`` (:func:`touched_environments`)."""
    with ExitStack() as locks:
        plans, environments = plan(users, env, search, warn, locks)
        touched = touched_environments(plans, environments) if verify else None
        result, verified = conda_envs.verified_run(touched, check_mode,
                                                   lambda: cleanup.run(plans, check_mode, target=target))
    result.update(environments=environments.prefixes, verified_environments=verified)
    return result


def argument_spec():
    """rattler_cache_clean's options."""
    return options.argument_spec(options.USERS, options.ENVIRONMENT, options.COMPACT, options.TARGET,
                                 options.VERIFY_ENVIRONMENTS, SEARCH)


def load(params):
    """rattler_cache_clean's options read: ``(users, environment, Search, cleanup.Target, verify)``;
    OptionError before anything is read."""
    search = Search.from_options(params)
    target = cleanup.Target.from_options(params)
    users = options.select_users(params["users"])
    options.check_sight(users)
    return users, options.shell_environment(params["environment"]), search, target, params["verify_environments"]


def clean_from_options(params, warn, check_mode):
    """What rattler_cache_clean does with its options; OptionError before anything is read."""
    users, env, search, target, verify = load(params)
    return clean(users, env, search, warn, check_mode, target, verify)
