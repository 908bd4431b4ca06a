# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# One behaviour for an unknown name in every module (options.select_users).
_UNKNOWN_USERS = r"""
      - A name the passwd database does not have fails the task, naming it, before anything is
        read or changed."""

_USERS_SPEC = r"""
    type: list
    elements: str
    default: []
"""

_CONDA_USERS = r"""
  users:
    description:
      - Only consider these users' homes (config, environments, caches) when discovering
        installations, environments and caches.
      - Empty (the default) means every account in the passwd database with an existing home
        directory.""" + _UNKNOWN_USERS + r"""
      - Environments of the users left out are then unknown to the module; their hard links still
        protect their packages from cleanup, their soft links do not. Prefer the default.""" + _USERS_SPEC

_CONDA_ENVIRONMENT = r"""
  environment:
    description:
      - Environment variables as the users' shells set them, applied to every user (for example
        C(CONDA_PKGS_DIRS), C(CONDA_ENVS_DIRS), C(CONDARC), C(XDG_CONFIG_HOME)). A module cannot see
        a user's login environment, so pass what your fleet sets. A variable set to null is unset.
    type: dict
    default: {}
"""


class ModuleDocFragment(object):
    """``users`` and ``environment``: whose accounts a module works for, and the shell environment
    it reads their configuration with (the spec is ``options.ACCOUNTS``; ``options.ENVIRONMENT``
    for the section without users). One section per kind of cache, since the names mean the same
    everywhere but select different things."""

    # Both kinds of cache (a module that says per kind what the options select).
    DOCUMENTATION = r"""
options:
  users:
    description:
      - Only these users.
      - Empty (the default) means every account in the passwd database.""" + _UNKNOWN_USERS + _USERS_SPEC + r"""
  environment:
    description:
      - Environment variables as the users' shells set them, applied to every user. A module cannot
        see a user's login environment, so pass what your fleet sets. A variable set to null is unset.
    type: dict
    default: {}
"""

    CONDA = "options:" + _CONDA_USERS + _CONDA_ENVIRONMENT + r"""
notes:
  - Run with C(become=true) to see every user's home, environments and caches.
"""

    CONDA_ENVIRONMENT = "options:" + _CONDA_ENVIRONMENT

    PIP = r"""
options:
  users:
    description:
      - Only these users' caches.
      - Empty (the default) means every account in the passwd database, C(root) included. Caches
        are found in each user's home by pip's own rules, so a cache several users share is
        handled once.""" + _UNKNOWN_USERS + _USERS_SPEC + r"""
  environment:
    description:
      - Environment variables as the users' shells set them, applied to every user. A module
        cannot see a user's login environment, so pass what your fleet sets.
      - Read are C(PIP_CACHE_DIR), C(PIP_NO_CACHE_DIR), C(PIP_CONFIG_FILE), any other C(PIP_*),
        C(VIRTUAL_ENV), C(XDG_CACHE_HOME), C(XDG_CONFIG_HOME), C(XDG_CONFIG_DIRS) and
        C(UV_CACHE_DIR). C(~) in C(PIP_CACHE_DIR) means each user's own home; relative XDG values
        are ignored, as pip does. A variable set to null is unset.
    type: dict
    default: {}
"""
