# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every cache kind cleaned in one run: each kind plans as its own module does (``conda_clean``,
``pip_clean``, ``rattler_clean``), and the pipeline executes all their plans at once, so that a
target (:class:`cleanup.Target`) takes the oldest items first across the caches of every kind on a
filesystem instead of one kind's after another's.  The locks a kind's planning takes are held
until every removal ends.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from contextlib import ExitStack

from ansible_collections.pkgcache.fleet.plugins.module_utils import (
    cleanup, conda_clean, conda_envs, options, pip_clean, rattler_clean)

KINDS = ("conda", "pip", "rattler")
# The options every kind shares, given once at the top; each kind's own come in its sub-options.
SHARED = options.argument_spec(options.USERS, options.ENVIRONMENT, options.COMPACT, options.TARGET,
                               options.VERIFY_ENVIRONMENTS)
_SPECS = dict(conda=conda_clean.argument_spec, pip=pip_clean.argument_spec, rattler=rattler_clean.argument_spec)


def argument_spec():
    """cache_clean's options: ``kinds``, the shared ones, and per kind a dict of its module's own."""
    own = dict((kind, dict(type="dict", apply_defaults=True,
                           options=dict((name, option) for name, option in _SPECS[kind]().items()
                                        if name not in SHARED)))
               for kind in KINDS)
    return options.argument_spec(SHARED, kinds=dict(type="list", elements="str", required=True, choices=list(KINDS)),
                                 **own)


def kind_params(params, kind):
    """The options of one kind's module: the shared ones with the kind's own."""
    merged = dict((name, params[name]) for name in SHARED)
    merged.update(params[kind])
    return merged


def clean(check_mode, target, warn, conda=None, pip=None, rattler=None, verify=False):
    """Plan every given kind, then run the pipeline once over all their plans (cut down to
    ``target``); unless ``check_mode`` it executes them.  ``conda`` is ``(host, plan arguments)``
    (see ``conda_clean.load``), ``pip`` ``(users, environment, Request)``, ``rattler``
    ``(users, environment, Search)``.  With ``verify`` the environments the conda and rattler
    plans touch are checked before and after, together (``conda_envs.verified_run``).

    The result is the pipeline's, every cache entry with its ``tool`` (pip's with its own keys),
    plus conda's ``tempfiles`` and ``restricted``, rattler's ``environments`` and the
    ``verified_environments``.
    """
    plans, tempfiles, pip_plans, pip_first = [], [], [], 0
    restricted, environments, touched = None, None, []
    with ExitStack() as locks:
        if conda is not None:
            host, how = conda
            conda_plans, tempfiles, restricted = conda_clean.plan(
                host, **dict((name, value) for name, value in how.items() if name != "verify"))
            plans.extend(conda_plans)
            if verify:
                touched.extend(conda_clean.touched_environments(host.environments, conda_plans))
        if pip is not None:
            pip_first = len(plans)
            pip_plans = pip_clean.plan(pip[0], pip[1], pip[2], warn, locks)
            plans.extend(pip_plans)
        if rattler is not None:
            rattler_plans, found = rattler_clean.plan(rattler[0], rattler[1], rattler[2], warn, locks)
            plans.extend(rattler_plans)
            environments = found.prefixes
            if verify:
                touched.extend(rattler_clean.touched_environments(rattler_plans, found))
        result, verified = conda_envs.verified_run(touched if verify else None, check_mode,
                                                   lambda: cleanup.run(plans, check_mode, hidden=tempfiles, target=target))
    for cache in result["caches"]:
        cache["tool"] = cache["kind"]
    pip_clean.annotate(result["caches"][pip_first:], pip_plans, check_mode)
    result.update(tempfiles=[path for plan in tempfiles for path in plan.paths], restricted=restricted,
                  environments=environments, verified_environments=verified)
    return result


def clean_from_options(params, warn, check_mode):
    """What cache_clean does with its options.  Every kind's options are read (OptionError)
    before any cache is; ValueError when what was read leaves conda's state unknown."""
    kinds = set(params["kinds"])
    target = cleanup.Target.from_options(params)
    pip = pip_clean.load(kind_params(params, "pip")) if "pip" in kinds else None
    rattler = rattler_clean.load(kind_params(params, "rattler"))[:3] if "rattler" in kinds else None
    conda = None
    if "conda" in kinds:
        host, how, _target = conda_clean.load(kind_params(params, "conda"))
        conda = host, how
    result = clean(check_mode, target, warn, conda, pip, rattler, params["verify_environments"])
    for message in host.warnings if conda else ():
        warn(message)
    return result
