# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """``verify_environments``: check after a cleanup that the environments it touched are whole
    (``options.VERIFY_ENVIRONMENTS``)."""

    DOCUMENTATION = r"""
options:
  verify_environments:
    description:
      - After removing, check again every environment whose packages the plan touched (conda's linked
        from a cache it removed from or naming a package it removed; pixi / rattler prefixes whose
        records name a cache it removed from), as
        M(pkgcache.fleet.conda_env_facts) does in its V(fast) mode (every file its records list is
        there, no link dangles, sizes match; records and history agree). Each is checked before the
        removal too.
      - An environment that was whole before and is not after fails the task; RV(verified_environments)
        lists it with its problems. An environment already unhealthy before is listed in
        C(unhealthy_before) and fails nothing.
      - In check mode the environments that would be verified are listed, and none is checked.
      - The roles and playbooks of this collection turn it on.
    type: bool
    default: false
"""
