# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Attributes shared by the modules of one kind: read-only facts, and plan-then-remove cleanup."""

    DOCUMENTATION = r"""
options: {}
"""

    FACTS = r"""
options: {}
attributes:
  check_mode:
    support: full
    description: The module never changes anything.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
  facts:
    support: full
    description: Returns C(ansible_facts); usable from C(gather_facts) via C(FACTS_MODULES), so AWX's fact
      cache can store the result per host.
"""

    CLEANUP = r"""
options: {}
attributes:
  check_mode:
    support: full
    description: Returns the exact plan and changes nothing.
  diff_mode:
    support: full
    description: Shows the paths that are (or would be) removed.
"""
