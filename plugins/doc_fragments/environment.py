# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """``environment``: the shell environment a module reads the users' configuration with
    (``options.ENVIRONMENT``, read by ``options.shell_environment``); one section per kind of
    cache says which variables matter there."""

    # A module that says per kind of cache which variables it reads.
    DOCUMENTATION = r"""
options:
  environment:
    description:
      - Environment variables as the users' shells set them, applied to every user. A module cannot
        see a user's login environment, so pass what your fleet sets. A variable set to null is unset.
    type: dict
    default: {}
"""

    CONDA = r"""
options:
  environment:
    description:
      - Environment variables as the users' shells set them, applied to every user (for example
        C(CONDA_PKGS_DIRS), C(CONDA_ENVS_DIRS), C(CONDARC), C(XDG_CONFIG_HOME); for micromamba
        C(MAMBA_ROOT_PREFIX), C(MAMBARC), C(XDG_DATA_HOME)). A module cannot see
        a user's login environment, so pass what your fleet sets. A variable set to null is unset.
    type: dict
    default: {}
"""

    PIP = r"""
options:
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
