# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Whose homes a conda module looks into, and the shell environment conda would see."""

    DOCUMENTATION = r"""
options:
  users:
    description:
      - Only consider these users' homes (config, environments, caches) when discovering
        installations, environments and caches. Default is every account in the passwd database
        with an existing home directory.
      - Environments of the users left out are then unknown to the module; their hard links still
        protect their packages from cleanup, their soft links do not. Prefer the default.
    type: list
    elements: str
  environment:
    description:
      - Environment variables as the users' shells set them, applied to every user (for example
        C(CONDA_PKGS_DIRS), C(CONDA_ENVS_DIRS), C(CONDARC), C(XDG_CONFIG_HOME)). A module cannot see
        a user's login environment, so pass what your fleet sets. A variable set to null is unset.
    type: dict
    default: {}
notes:
  - Run with C(become=true) to see every user's home, environments and caches.
"""
