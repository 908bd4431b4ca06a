# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slice results (issue 15): one file per host, whatever the host's name, read back into the
same report a single job builds; missing and corrupt files leave their hosts without data."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from hypothesis import given, settings, strategies as st

from ansible_collections.pkgcache.fleet.plugins.plugin_utils import _report, _slices
from unit.plugins.plugin_utils.hostvars import UNREACHABLE, synthetic_fleet

NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80)


def test_three_slices_merged_build_the_single_jobs_report(tmp_path):
    views, active = synthetic_fleet(60)
    for index in range(3):
        part = views[index::3]
        _slices.write(str(tmp_path), part, [name for name, _view in part if name in active], False)
    warnings = []
    merged_views, merged_active, check_mode = _slices.read(str(tmp_path), [name for name, _view in views], warnings.append)
    assert warnings == [] and not check_mode
    assert [list(view) for view in merged_views] == json.loads(json.dumps(views)) and merged_active == active
    now = _report.datetime.datetime(2026, 1, 1, tzinfo=_report.datetime.timezone.utc)
    assert _report.build(merged_views, merged_active, "t", now=now) == json.loads(json.dumps(
        _report.build(views, active, "t", now=now)))


@settings(max_examples=50, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=5, unique=True))
def test_every_host_name_gets_a_file_of_its_own_inside_the_directory(tmp_path_factory, names):
    directory = tmp_path_factory.mktemp("slices")
    paths = _slices.write(str(directory), [(name, {"n": name}) for name in names], names, True)
    assert len(set(paths)) == len(names)
    assert sorted(path.name for path in directory.iterdir()) == sorted(p.rsplit("/", 1)[1] for p in paths)
    views, active, check_mode = _slices.read(str(directory), names, AssertionError)
    assert views == [(name, {"n": name}) for name in names] and active == names and check_mode


def test_names_too_long_for_a_file_name_share_a_prefix_yet_get_files_of_their_own(tmp_path):
    names = ["\u00e9" * 200 + "-a", "\u00e9" * 200 + "-b", "h" * 253]
    paths = _slices.write(str(tmp_path), [(name, {"n": name}) for name in names], names, False)
    assert len(set(paths)) == 3 and all(len(p.rsplit("/", 1)[1].encode()) <= 255 for p in paths)
    views, _active, _check = _slices.read(str(tmp_path), names, AssertionError)
    assert views == [(name, {"n": name}) for name in names]


def test_missing_or_corrupt_results_leave_the_host_without_data(tmp_path):
    _slices.write(str(tmp_path), [("a", {"cache_facts_result": UNREACHABLE}), ("b", {}), ("c", {})], ["b", "c"], False)
    (tmp_path / "b.json").write_text('{"host": "b", "vi')
    (tmp_path / "c.json").write_text(json.dumps({"host": "someone-else", "view": {}, "active": True}))
    warnings = []
    views, active, _check = _slices.read(str(tmp_path), ["a", "b", "c", "d"], warnings.append)
    report = _report.build(views, active, "t")
    assert [host["status"] for host in report["hosts"]] == ["unreachable", "no_data", "no_data", "no_data"]
    assert len(warnings) == 2 and "b.json is not a slice result" in warnings[0]
    assert warnings[1].startswith("no slice wrote a result for d to ")
