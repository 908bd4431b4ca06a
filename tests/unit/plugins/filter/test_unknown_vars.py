# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The unknown_vars filter: a role's misspelt variables, found among every variable name."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pkgcache.fleet.plugins.filter.unknown_vars import FilterModule

unknown_vars = FilterModule().filters()["unknown_vars"]


def test_misspelt_names_with_the_prefix_are_unknown_once_and_sorted():
    names = ["cache_clean_min_aeg", "cache_clean_min_age", "cache_clean_min_aeg", "cache_clean_keep_lastest"]
    assert unknown_vars(names, "cache_clean_", ["cache_clean_min_age", "cache_clean_keep_latest"]) \
        == ["cache_clean_keep_lastest", "cache_clean_min_aeg"]


def test_names_without_the_prefix_are_none_of_its_business():
    assert unknown_vars(["ansible_host", "pkgs_backup_dset", "__cache_clean_options"], "cache_clean_", []) == []
