# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache_totals filter as templates see it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pkgcache.fleet.plugins.filter.cache_totals import FilterModule
from unit.plugins.plugin_utils.hostvars import facts


def test_filter_returns_host_totals_from_ansible_facts():
    cache_totals = FilterModule().filters()["cache_totals"]
    totals = cache_totals(facts(conda=(300, 100), pip=(50, 20))["ansible_facts"])
    assert (totals["cache_bytes"], totals["reclaimable_bytes"]) == (350, 120)
    assert totals["conda"]["disk_bytes"] == 300 and totals["pip"]["reclaimable_bytes"] == 20
