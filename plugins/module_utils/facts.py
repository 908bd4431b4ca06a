# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The glue the facts modules share: module options to ``ansible_facts``.

``conda_cache_facts``, ``pip_cache_facts`` and ``cache_facts`` (both in one call) all go through
:func:`gather`, so the combined module returns exactly what the single ones return.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pkgcache.fleet.plugins.module_utils import (
    conda_envs, conda_facts, conda_integrity, options, pip_cache, rattler_cache, self_clean)
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import with_homes
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import shell_environment

CONDA = "conda"
PIP = "pip"
RATTLER = "rattler"
KINDS = (CONDA, PIP)  # what cache_facts gathers by default
INTEGRITY = "integrity"
ENVS = "envs"  # conda_env_facts' facts; cache_facts gathers them in the same run on request
# What it gathers only when asked: rattler searches every home for pixi workspaces, the integrity
# audit of the conda caches reads every package, the environments' health stats every file.
ON_REQUEST = (RATTLER, INTEGRITY, ENVS)
FACT_NAMES = {CONDA: "conda_cache", PIP: "pip_cache", RATTLER: "rattler_cache", ENVS: "conda_envs",
              INTEGRITY: "conda_cache_integrity"}


def _rattler_environments(accounts, params, searched):
    """The pixi / rattler prefixes of ``accounts``, searched once per run (``searched`` keeps them)
    for the rattler kind and the environments kind alike."""
    if RATTLER not in searched:
        searched[RATTLER] = rattler_cache.find_environments(
            accounts, shell_environment(params["environment"]), rattler_cache.Search.from_options(params))
    return searched[RATTLER]


def _conda(gather, accounts, params, warn, **options):
    """One conda kind's facts.  The conda modules look into the homes that exist, each once; the
    model's warnings are returned in the facts and shown as the task's warnings too."""
    facts = gather(with_homes(accounts), roots=params["roots"],
                   env=shell_environment(params["environment"]), **options)
    for warning in facts["warnings"]:
        warn(warning)
    return facts


def _conda_cache(accounts, params, warn, _searched):
    return _conda(conda_facts.gather, accounts, params, warn,
                  env_sizes=params["env_sizes"], list_packages=params["list_packages"])


def _conda_envs(accounts, params, warn, searched):
    # conda_env_facts names its options mode and workers; cache_facts envs_mode, with one worker.
    mode = params["envs_mode"] if "envs_mode" in params else params["mode"]
    rattler_prefixes = ()
    if RATTLER in (params.get("gather") or ()):
        # Why the search may have stopped short is the rattler kind's to say.
        rattler_prefixes = _rattler_environments(accounts, params, searched).prefixes
    return _conda(conda_envs.gather, accounts, params, warn, mode=mode, workers=params.get("workers") or 1,
                  rattler_prefixes=rattler_prefixes)


def _conda_integrity(accounts, params, warn, _searched):
    return _conda(conda_integrity.gather, accounts, params, warn, mode=params["integrity_mode"])


def _pip_cache(accounts, params, warn, _searched):
    # Named users are reported even without a cache (keep_empty); with the default every
    # account is looked at and only owners of a cache are reported.
    return pip_cache.gather_facts(accounts, shell_environment(params["environment"]), warn,
                                  keep_empty=bool(params["users"]))


def _rattler_cache(accounts, params, warn, searched):
    return rattler_cache.gather_facts(accounts, shell_environment(params["environment"]),
                                      rattler_cache.Search.from_options(params), warn,
                                      list_packages=params["list_packages"],
                                      environments=_rattler_environments(accounts, params, searched))


_GATHER = {CONDA: _conda_cache, PIP: _pip_cache, RATTLER: _rattler_cache, ENVS: _conda_envs,
           INTEGRITY: _conda_integrity}


def gather(accounts, params, kinds, warn):
    """``{fact name: facts}`` for each of *kinds* (``conda``, ``pip``, ``envs``, ``integrity``), each saying whether it is
    ``complete`` and, when not, why (``incomplete_reasons``).

    *accounts* are the passwd users of the ``users`` option (``options.select_users``), read
    once for every kind; *params* the module's parameters; *warn* the module's ``warn``.
    """
    result, searched = {}, {}
    blind = options.blind_spot(accounts)
    for kind in KINDS + ON_REQUEST:
        if kind not in kinds:
            continue
        problems = []

        def noted(message):
            problems.append(message)
            warn(message)

        facts = _GATHER[kind](accounts, params, noted, searched)
        reasons = [blind] if blind else []
        if problems:
            reasons.append("%d problem(s) reading the host, see the warnings" % len(problems))
        facts["complete"] = not reasons
        facts["incomplete_reasons"] = reasons
        result[FACT_NAMES[kind]] = facts
    return result


def argument_spec():
    """cache_facts' options (the module's argument spec, and the local command's flags)."""
    return options.argument_spec(
        options.USERS, options.ENVIRONMENT, options.CONDA_FACTS, rattler_cache.SEARCH,
        gather=dict(type="list", elements="str", choices=list(KINDS + ON_REQUEST), default=list(KINDS)),
        integrity_mode=dict(type="str", choices=list(conda_envs.MODES), default=conda_envs.FAST),
        envs_mode=dict(type="str", choices=list(conda_envs.MODES), default=conda_envs.FAST),
    )


def select(params):
    """The accounts the ``users`` option names (an unknown one is an OptionError)."""
    if not params.get("gather", KINDS):
        raise options.OptionError("gather is empty; name conda, pip, rattler or several")
    if RATTLER in params.get("gather", ()):
        rattler_cache.Search.from_options(params)
    return options.select_users(params["users"])


def exit_module(module, kinds, self_clean_record=False):
    """End a facts module: the ``users`` it names (an unknown one fails the task before anything
    is read), then ``kinds`` gathered for them as ``ansible_facts``, printable.

    *self_clean_record*: also return the host's record of its last scheduled clean, when it
    keeps one (``pkgcache_self_clean``), so the fleet report can show it; one open() more."""
    out = Results(module)
    try:
        accounts = select(module.params)
    except options.OptionError as exc:
        out.fail(str(exc))
    found = gather(accounts, module.params, kinds, out.warn)
    record = self_clean.read_fact() if self_clean_record else None
    if record is not None:
        found[self_clean.FACT_NAME] = record
    out.exit(changed=False, ansible_facts=found)
