# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: unknown_vars
short_description: Variable names that carry a role's prefix but are none of its variables
version_added: 0.1.0
description:
  - Takes variable names (from C(query('ansible.builtin.varnames', ...)) and from other hosts'
    C(hostvars)) and returns, sorted and once each, those that start with O(prefix) and are not in
    O(valid).
  - The collection's roles use it to refuse a misspelt policy variable (C(cache_clean_min_aeg))
    instead of running with the default it was meant to override.
author:
  - pkgcache.fleet contributors (@pkgcache)
options:
  _input:
    description: Variable names; duplicates and names without O(prefix) are fine.
    type: list
    elements: str
    required: true
  prefix:
    description: The role's variable prefix, for example C(cache_clean_).
    type: str
    required: true
  valid:
    description: The role's variables - its argument spec's options and what it registers or sets.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse unknown cache_clean_ variables
  ansible.builtin.assert:
    that: unknown | length == 0
    fail_msg: "Unknown variable(s): {{ unknown | join(', ') }}"
  vars:
    unknown: "{{ query('ansible.builtin.varnames', '^cache_clean_') | pkgcache.fleet.unknown_vars('cache_clean_', ['cache_clean_min_age']) }}"
"""

RETURN = r"""
_value:
  description: The unknown names, sorted.
  type: list
  elements: str
"""


def unknown_vars(names, prefix, valid):
    """Names in *names* that start with *prefix* and are not in *valid*, sorted, once each."""
    return sorted(set(name for name in names if name.startswith(prefix)) - set(valid))


class FilterModule(object):
    def filters(self):
        return {"unknown_vars": unknown_vars}
