# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """``users``: whose accounts a module works for (``options.USERS``, selected by
    ``options.select_users``). The name means the same in every module, and so does an unknown
    name; one section per kind of cache says what the users select there."""

    # A module that says per kind of cache what users selects.
    DOCUMENTATION = r"""
options:
  users:
    description:
      - Only these users.
      - Empty (the default) means every account in the passwd database.
      - A name the passwd database does not have fails the task, naming it, before anything is
        read or changed.
    type: list
    elements: str
    default: []
"""

    CONDA = r"""
options:
  users:
    description:
      - Only consider these users' homes (config, environments, caches) when discovering
        installations, environments and caches.
      - Empty (the default) means every account in the passwd database with an existing home
        directory. A name the passwd database does not have fails the task, naming it, before
        anything is read or changed.
      - Environments of the users left out are then unknown to the module; their hard links still
        protect their packages from cleanup, their soft links do not. Prefer the default.
    type: list
    elements: str
    default: []
notes:
  - Run with C(become=true) to see every user's home, environments and caches. Without root, facts say
    C(complete=false) with the reason, and cleaning modules refuse unless O(users) names only the
    account they run as.
"""

    PIP = r"""
options:
  users:
    description:
      - Only these users' caches.
      - Empty (the default) means every account in the passwd database, C(root) included. Caches
        are found in each user's home by pip's own rules, so a cache several users share is
        handled once. A name the passwd database does not have fails the task, naming it,
        before anything is read or changed.
    type: list
    elements: str
    default: []
"""
