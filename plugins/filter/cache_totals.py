# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: cache_totals
short_description: One host's conda, pip and rattler cache totals from its facts
version_added: 0.1.0
description:
  - Takes a host's C(ansible_facts) and returns the numbers the fleet report uses - per tool
    facts (C(conda) with mamba's caches, C(pip) with uv's, C(rattler); null when those facts were not
    gathered) the on-disk and reclaimable bytes and counts, and C(cache_bytes) and C(reclaimable_bytes)
    over all of them. A rattler cache's reclaimable bytes are its unused packages.
  - The P(pkgcache.fleet.cache_clean#role) role records this before cleaning, so the report can
    show before and after.
author:
  - pkgcache.fleet contributors (@pkgcache)
options:
  _input:
    description: A host's C(ansible_facts), after M(pkgcache.fleet.cache_facts) (or the single-kind facts modules).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: How much this host's caches hold and could give back
  ansible.builtin.debug:
    msg: "{{ (ansible_facts | pkgcache.fleet.cache_totals).reclaimable_bytes | ansible.builtin.human_readable }}"
"""

RETURN = r"""
_value:
  description: C(conda), C(pip), C(rattler), C(cache_bytes), C(reclaimable_bytes).
  type: dict
"""

from ansible_collections.pkgcache.fleet.plugins.plugin_utils._report import cache_totals


class FilterModule(object):
    def filters(self):
        return {"cache_totals": cache_totals}
