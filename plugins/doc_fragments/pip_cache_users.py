# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Whose pip and uv caches a module works on, and the shell environment that places them."""

    DOCUMENTATION = r"""
options:
  users:
    description:
      - Only these users' caches.
      - Empty (the default) means every account in the passwd database, C(root) included. Caches
        are found in each user's home by pip's own rules, so a cache several users share is
        handled once.
    type: list
    elements: str
    default: []
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
