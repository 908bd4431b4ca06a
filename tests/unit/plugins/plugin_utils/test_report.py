# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet report model: host status from what the play left behind, before/after of a clean,
fleet totals and set_stats data."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import jmespath

from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes
from ansible_collections.pkgcache.fleet.plugins.plugin_utils import _render, _report
from unit.plugins.module_utils.test_local_command import build
from unit.plugins.module_utils.test_metrics import host_json, pixi_world
from unit.plugins.plugin_utils import backup_results
from unit.plugins.plugin_utils.hostvars import FAILED, UNREACHABLE, clean_result, cleaned, facts, pip_clean_result

MiB = 1024 * 1024
RECORDED = backup_results.load()


def test_cache_totals_add_conda_and_pip_on_disk_and_reclaimable():
    totals = _report.cache_totals(facts(conda=(10 * MiB, 4 * MiB), pip=(3 * MiB, 3 * MiB))["ansible_facts"])
    assert totals["cache_bytes"] == 13 * MiB
    assert totals["reclaimable_bytes"] == 7 * MiB
    assert totals["conda"]["caches"] == 1 and totals["pip"]["caches"] == 1


def test_cache_totals_tell_not_gathered_from_empty():
    only_pip = _report.cache_totals(facts(pip=(0, 0))["ansible_facts"])
    assert only_pip["conda"] is None
    assert only_pip["pip"] == {"caches": 1, "disk_bytes": 0, "reclaimable_bytes": 0}
    assert _report.cache_totals(None) == {"conda": None, "pip": None, "rattler": None, "cache_bytes": 0, "reclaimable_bytes": 0}


def test_active_host_with_facts_is_ok_and_without_is_no_data():
    assert _report.host_record("h1", facts(conda=(1, 0)), active=True)["status"] == _report.OK
    record = _report.host_record("h2", {}, active=True)
    assert record["status"] == _report.NO_DATA
    assert record["error"] is None and record["clean"] is None


def test_unreachable_host_is_named_with_the_connection_error():
    hostvars = dict(facts(conda=(5, 1)), cache_clean_conda_result=UNREACHABLE)
    record = _report.host_record("h3", hostvars, active=False)
    assert record["status"] == _report.UNREACHABLE
    assert "Connection refused" in record["error"]
    # Facts gathered before the host went away still show what it holds.
    assert record["cache_bytes"] == 5


def test_a_host_lost_during_the_clean_is_unreachable_there_too_not_nothing_to_remove():
    before = facts(conda=(5, 1))
    record = _report.host_record("h3", cleaned(before, before, UNREACHABLE), active=False)
    assert record["status"] == _report.UNREACHABLE
    assert record["clean"]["outcome"] == _report.UNREACHABLE


def test_a_host_whose_facts_are_incomplete_says_so_and_why():
    hostvars = facts(conda=(5, 1), pip=(2, 0))
    hostvars["ansible_facts"]["conda_cache"]["incomplete_reasons"] = ["not running as root (use become: true)"]
    record = _report.host_record("h6", hostvars, active=True)
    assert record["status"] == _report.INCOMPLETE and "conda_cache: not running as root" in record["error"]
    assert record["cache_bytes"] == 7  # what was seen is still counted
    hostvars["ansible_facts"]["conda_cache"]["incomplete_reasons"] = []
    assert _report.host_record("h6", hostvars, active=True)["status"] == _report.OK


def test_failed_host_names_the_step_and_message():
    record = _report.host_record("h4", dict(facts(), cache_facts_result=FAILED), active=False)
    assert record["status"] == _report.FAILED
    assert record["error"] == "cache_facts_result: cache /opt/conda/pkgs is locked"


def test_host_that_left_the_play_elsewhere_is_failed_with_a_pointer():
    record = _report.host_record("h5", facts(conda=(5, 1)), active=False)
    assert record["status"] == _report.FAILED
    assert "outside the pkgcache.fleet roles" in record["error"]


def test_skipped_registered_results_are_no_errors():
    hostvars = dict(facts(conda=(5, 1)), cache_facts_result={"skipped": True, "changed": False})
    assert _report.host_record("h1", hostvars, active=True)["error"] is None


def test_real_clean_reports_before_after_freed_and_removed():
    before = facts(conda=(10 * MiB, 6 * MiB), pip=(2 * MiB, 2 * MiB))
    after = facts(conda=(4 * MiB, 0), pip=(2 * MiB, 2 * MiB))
    result = clean_result(6 * MiB, removed=["/opt/conda/pkgs/a", "/opt/conda/pkgs/b"],
                          freed={"/": 5 * MiB, "/data": 1 * MiB})
    record = _report.host_record("h1", cleaned(after, before, result), active=True)
    clean = record["clean"]
    assert clean["check_mode"] is False
    assert clean["outcome"] == _report.CLEANED
    assert (clean["before_bytes"], clean["after_bytes"]) == (12 * MiB, 6 * MiB)
    assert clean["reduced_bytes"] == 6 * MiB
    assert clean["freed_bytes"] == 6 * MiB
    assert clean["removed"] == 2
    assert record["cache_bytes"] == 6 * MiB


def test_conda_and_pip_cleaning_add_up():
    before = facts(conda=(10 * MiB, 6 * MiB), pip=(3 * MiB, 3 * MiB))
    after = facts(conda=(4 * MiB, 0), pip=(0, 0))
    conda = clean_result(6 * MiB, removed=["/opt/conda/pkgs/a"], freed={"/": 6 * MiB})
    pip = pip_clean_result(3 * MiB, removed=["/home/alice/.cache/pip/http-v2", "/home/alice/.cache/pip/wheels"],
                           freed={"/": 3 * MiB})
    clean = _report.host_record("h1", cleaned(after, before, conda, pip_result=pip), active=True)["clean"]
    assert (clean["planned_bytes"], clean["freed_bytes"], clean["removed"]) == (9 * MiB, 9 * MiB, 3)
    assert (clean["before_bytes"], clean["after_bytes"], clean["reduced_bytes"]) == (13 * MiB, 4 * MiB, 9 * MiB)
    # Each part's summary labelled, so "removed 3 path(s)" says whose paths.
    assert clean["msg"] == "conda: removed; pip: removed pip"


def test_a_clean_to_target_over_every_kind_is_the_hosts_clean_stage():
    # With a target the role runs one module over every kind and registers cache_clean_result.
    before = facts(conda=(10 * MiB, 6 * MiB), pip=(3 * MiB, 3 * MiB))
    after = facts(conda=(6 * MiB, 2 * MiB), pip=(1 * MiB, 1 * MiB))
    one = clean_result(6 * MiB, removed=["/opt/conda/pkgs/a", "/home/alice/.cache/pip/wheels"],
                       freed={"/": 6 * MiB}, msg="to target")
    hostvars = cleaned(after, before, one)
    hostvars["cache_clean_result"] = hostvars.pop("cache_clean_conda_result")
    clean = _report.host_record("h1", hostvars, active=True)["clean"]
    assert clean["outcome"] == _report.CLEANED
    assert (clean["planned_bytes"], clean["freed_bytes"], clean["removed"]) == (6 * MiB, 6 * MiB, 2)
    assert (clean["before_bytes"], clean["after_bytes"]) == (13 * MiB, 7 * MiB)
    assert clean["msg"] == "to target: to target"


def test_all_conda_caches_gated_but_pip_cleaned_is_cleaned_and_all_gated_is_skipped():
    state = facts(conda=(1, 0), pip=(1, 1))
    totals = _report.cache_totals(state["ansible_facts"])
    gated = clean_result(0, skipped=["free space 40% is not below 10%"])
    pip = pip_clean_result(1, removed=["/home/alice/.cache/pip/wheels"])
    assert _report.clean_summary(cleaned(state, state, gated, pip_result=pip), totals)["outcome"] == _report.CLEANED
    pip_gated = pip_clean_result(0, skipped=["uv holds its lock"])
    assert _report.clean_summary(cleaned(state, state, gated, pip_result=pip_gated), totals)["outcome"] == _report.SKIPPED


def test_check_mode_clean_has_a_plan_but_no_after():
    state = facts(conda=(10 * MiB, 6 * MiB))
    clean = _report.clean_summary(cleaned(state, state, clean_result(6 * MiB, msg="would remove"), check_mode=True),
                                  _report.cache_totals(state["ansible_facts"]))
    assert clean["outcome"] == _report.CLEANED
    assert clean["planned_bytes"] == 6 * MiB
    assert clean["after_bytes"] is None and clean["reduced_bytes"] == 0 and clean["freed_bytes"] == 0


def test_clean_outcomes_skipped_nothing_failed():
    state = facts(conda=(1, 0))
    totals = _report.cache_totals(state["ansible_facts"])
    gated = clean_result(0, skipped=["free space 40% is not below 10%", "busy"])
    assert _report.clean_summary(cleaned(state, state, gated), totals)["outcome"] == _report.SKIPPED
    assert _report.clean_summary(cleaned(state, state, clean_result(0)), totals)["outcome"] == _report.NOTHING
    broken = clean_result(5, failed=True, msg="removal failed for 1 item(s)")
    assert _report.clean_summary(cleaned(state, state, broken), totals)["outcome"] == _report.FAILED


def test_no_clean_summary_when_the_clean_task_was_skipped():
    state = facts(conda=(1, 0))
    hostvars = cleaned(state, state, {"skipped": True, "changed": False, "false_condition": "cache_clean_conda"})
    assert _report.clean_summary(hostvars, _report.cache_totals(state["ansible_facts"])) is None


def fleet():
    before = facts(conda=(10 * MiB, 6 * MiB))
    after = facts(conda=(4 * MiB, 0))
    return [
        ("h1", cleaned(after, before, clean_result(6 * MiB, removed=["x"], freed={"/": 6 * MiB}))),
        ("h2", cleaned(before, before, clean_result(0, skipped=["busy"]))),
        ("h3", dict(before, cache_clean_conda_result=UNREACHABLE)),
        ("h4", dict(facts(), cache_facts_result=FAILED)),
        ("h5", facts(pip=(MiB, MiB))),
    ]


def test_fleet_totals_count_every_host_once():
    report = _report.build(fleet(), ["h1", "h2", "h5"], "t",
                           now=datetime.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=datetime.timezone.utc))
    totals = report["totals"]
    assert [h["host"] for h in report["hosts"]] == ["h1", "h2", "h3", "h4", "h5"]
    assert totals["by_status"] == {"ok": 3, "incomplete": 0, "no_conda": 0, "failed": 1, "unreachable": 1,
                                   "no_data": 0}
    assert totals["hosts_failed"] == 2
    assert (totals["hosts_cleaned"], totals["hosts_skipped"]) == (1, 1)
    assert totals["cache_bytes"] == 4 * MiB + 10 * MiB + 10 * MiB + MiB
    assert totals["freed_bytes"] == 6 * MiB
    assert report["generated"] == "2026-01-02T03:04:05+00:00"


def test_report_answers_jmespath_queries():
    report = _report.build(fleet(), ["h1", "h2", "h5"], "t")
    assert jmespath.search("hosts[?status=='unreachable'].host", report) == ["h3"]
    assert jmespath.search("hosts[?status!='ok'].[host, error]", report)[1][0] == "h4"
    assert jmespath.search("max_by(hosts, &reclaimable_bytes).host", report) == "h2"
    assert jmespath.search("hosts[?clean.outcome=='cleaned'].host", report) == ["h1"]


def test_stats_are_flat_prefixed_numbers():
    data = _report.stats(_report.build(fleet(), ["h1", "h2", "h5"], "t"))
    assert all(key.startswith("pkgcache_") for key in data)
    assert all(isinstance(value, int) for value in data.values())
    assert data["pkgcache_hosts"] == 5 and data["pkgcache_hosts_failed"] == 2
    assert data["pkgcache_freed_bytes"] == 6 * MiB


def backup_host(result):
    return dict(facts(conda=(1, 0)), pkgs_backup_result=result)


def test_recorded_backup_results_have_the_shape_the_module_returns_now(tmp_path):
    """The report tests below read recorded module output; a renamed or missing key in the
    module's result shows here first (regenerate the recording with backup_results.py)."""
    fresh = backup_results.record(tmp_path)
    assert dict((name, shape(result)) for name, result in fresh.items()) == \
        dict((name, shape(result)) for name, result in RECORDED.items())


def shape(value):
    """Keys and types, not values: ``{"copied": [{"fn": "str", ...}], "unchanged": "int"}``."""
    if isinstance(value, dict):
        return dict((key, shape(item)) for key, item in value.items() if key != "invocation")
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_backup_summary_counts_what_a_real_backup_copied():
    result = RECORDED["present"]
    assert result["copied"] and not result["rejected"]
    record = _report.host_record("h1", backup_host(result), active=True)
    assert record["backup"] == {"copied": len(result["copied"]), "already_stored": 0, "unchanged": 0,
                                "bytes_copied": sum(c["size"] for c in result["copied"]),
                                "failed": 0, "manifest": result["manifest"]}
    totals = _report.fleet_totals([record])
    assert (totals["hosts_backed_up"], totals["backup_bytes_copied"]) == (1, result["bytes_copied"])


def test_a_rejected_tarball_with_fail_on_mismatch_fails_the_host_and_counts_as_failed():
    result = RECORDED["mismatch_failed"]
    assert result["failed"] is True and len(result["rejected"]) == 1, "the recording: one tarball corrupted"
    record = _report.host_record("h1", backup_host(result), active=False)
    assert record["status"] == _report.FAILED and record["error"].startswith("pkgs_backup_result: ")
    assert record["backup"]["failed"] == 1 and record["backup"]["copied"] == 0
    # ignore_errors keeps the host in the play: it is ok, and the rejected tarball still counts.
    kept = _report.host_record("h1", backup_host(result), active=True)
    assert kept["status"] == _report.OK and kept["backup"]["failed"] == 1


def test_the_whole_report_renders_a_fleet_with_a_failed_backup():
    report = _report.build([("h1", backup_host(RECORDED["present"])), ("h2", backup_host(RECORDED["mismatch_failed"]))],
                           ["h1"], "t")
    assert report["totals"]["by_status"]["failed"] == 1 and report["totals"]["hosts_backed_up"] == 2
    assert [h["backup"]["failed"] for h in report["hosts"]] == [0, 1]
    rendered = dict((fmt, render(report)) for fmt, render in _render.RENDERERS.items())
    assert "; 1 failed" in rendered["markdown"]


def test_verify_only_backup_has_no_summary_and_a_failed_backup_fails_the_host():
    verified = {"changed": False, "checked": 10, "missing": [], "corrupt": [], "msg": "ok"}
    assert _report.backup_summary(dict(pkgs_backup_result=verified)) is None
    record = _report.host_record("h2", dict(facts(conda=(1, 0)), pkgs_backup_result=FAILED), active=False)
    assert record["status"] == _report.FAILED and record["error"].startswith("pkgs_backup_result: ")


def test_a_check_run_says_so_in_totals_and_stats_even_without_a_clean():
    report = _report.build(fleet(), ["h1", "h2", "h5"], "t", check_mode=True)
    assert report["totals"]["check_mode"] is True
    assert _report.stats(report)["pkgcache_check_mode"] is True
    assert _report.stats(_report.build(fleet(), ["h1", "h2", "h5"], "t"))["pkgcache_check_mode"] is False


def test_policies_group_hosts_by_the_clean_policy_in_force():
    strict = {"cache_clean_min_age": "7d"}
    loose = {"cache_clean_min_age": "0"}
    views = []
    for name, policy in (("a", strict), ("b", loose), ("c", strict)):
        hostvars = cleaned(facts(conda=(10, 0)), facts(conda=(10, 0)), clean_result(0))
        hostvars[_report.CLEAN_POLICY_VAR] = policy
        views.append((name, hostvars))
    views.append(("d", facts(conda=(1, 0))))
    report = _report.build(views, ["a", "b", "c", "d"], "t")
    assert report["policies"] == [{"policy": strict, "hosts": ["a", "c"]}, {"policy": loose, "hosts": ["b"]}]
    assert [host["clean"] and host["clean"]["policy"] for host in report["hosts"]] == [strict, loose, strict, None]


def no_conda_facts(pip=None):
    """Facts of a host the conda facts module found no installation on (its RETURN when empty)."""
    state = facts(conda=(0, 0), pip=pip)
    conda = state["ansible_facts"]["conda_cache"]
    conda.update(installations=[], caches=[], environments=[])
    conda["totals"].update(installations=0, caches=0, environments=0)
    return state


def test_a_host_without_conda_has_status_no_conda_not_ok_and_its_pip_caches_still_count():
    """Issue 14, finding 6: "skipped 5" were hosts without conda, shown as ok."""
    record = _report.host_record("h6", no_conda_facts(pip=(2 * MiB, MiB)), active=True)
    assert (record["status"], record["error"]) == (_report.NO_CONDA, None)
    assert (record["cache_bytes"], record["reclaimable_bytes"]) == (2 * MiB, MiB)
    incomplete = no_conda_facts()
    incomplete["ansible_facts"]["conda_cache"]["incomplete_reasons"] = ["/home/bob: permission denied"]
    assert _report.host_record("h7", incomplete, active=True)["status"] == _report.INCOMPLETE
    assert _report.host_record("h8", dict(no_conda_facts(), cache_facts_result=UNREACHABLE), active=False)[
        "status"] == _report.UNREACHABLE


def test_the_summary_tells_hosts_with_nothing_to_remove_and_without_conda_from_skipped_ones():
    state = facts(conda=(1, 0))
    bare = no_conda_facts()
    hosts = [("h1", cleaned(state, state, clean_result(0, skipped=["busy"]))),
             ("h2", cleaned(state, state, clean_result(0))),
             ("h3", cleaned(bare, bare, clean_result(0, skipped=[]))),
             ("h4", dict(facts(), cache_facts_result=UNREACHABLE))]
    report = _report.build(hosts, ["h1", "h2", "h3"], "t", check_mode=True)
    totals = report["totals"]
    assert (totals["hosts_skipped"], totals["hosts_nothing_to_remove"]) == (3, 2)
    lines = _render._summary_lines(totals)
    assert lines[0] == "Hosts: 4 (1 no conda, 2 ok, 1 unreachable)"
    assert lines[-1] == "Would free: 0 B; hosts to clean 0, nothing to remove 2, every cache skipped 1"
    assert _render.summary_message(report) == (
        "4 host(s): 1 no conda, 2 ok, 1 unreachable; caches 2 B (conda 2 B, pip 0 B), 0 B reclaimable")


def test_a_host_with_pip_uv_and_rattler_caches_only_shows_each_tool_its_bytes_and_free_space(tmp_path):
    """Real facts of a fixture host (its conda left out): pip's and uv's caches made by the layout,
    alice's rattler cache by py-rattler.  Every figure of the host's row comes from those facts."""
    fsroot, _manifest = build(tmp_path, "multi_user")
    pixi_world(fsroot)
    (fsroot / "root").mkdir(exist_ok=True)  # the fixture's passwd names root's home: complete facts
    found = host_json(fsroot, ["facts", "--gather", "pip", "rattler"])
    pip, rattler = found["pip_cache"], found["rattler_cache"]
    report = _report.build([("h1", {"ansible_facts": found})], ["h1"], "t")
    host = report["hosts"][0]
    assert host["status"] == _report.OK and host["conda"] is None
    per_tool = {}
    for path, cache in list(pip["caches"].items()) + list(rattler["caches"].items()):
        part = per_tool.setdefault(cache["tool"], {"caches": 0, "disk_bytes": 0, "reclaimable_bytes": 0})
        part["caches"] += 1
        part["disk_bytes"] += cache["usage"]["disk_bytes"]
        # rattler_cache_clean frees the unused packages only; pip_cache_clean the whole cache.
        part["reclaimable_bytes"] += cache.get("unused_reclaimable_bytes", cache["usage"]["reclaimable_bytes"])
    assert sorted(per_tool) == ["pip", "rattler", "uv"] and host["tools"] == per_tool
    assert 0 < per_tool["rattler"]["reclaimable_bytes"] < per_tool["rattler"]["disk_bytes"]
    assert host["rattler"] == {"caches": 1, "disk_bytes": rattler["totals"]["rattler"]["disk_bytes"],
                               "reclaimable_bytes": per_tool["rattler"]["reclaimable_bytes"]}
    assert host["cache_bytes"] == pip["totals"]["all"]["disk_bytes"] + rattler["totals"]["rattler"]["disk_bytes"]
    assert host["reclaimable_bytes"] == pip["totals"]["all"]["reclaimable_bytes"] + per_tool["rattler"]["reclaimable_bytes"]
    # Free space comes from the pip, uv and rattler caches' own filesystem facts.
    mounts = dict((c["filesystem"]["mount"], c["filesystem"]) for c in list(pip["caches"].values()) + list(rattler["caches"].values()))
    assert [fs["mount"] for fs in host["filesystems"]] == sorted(mounts)
    assert host["free"]["available_bytes"] == min(fs["available_bytes"] for fs in mounts.values())
    assert report["totals"]["tools"]["rattler"]["disk_bytes"] == per_tool["rattler"]["disk_bytes"]
    # pip and uv are named apart: pip's figure is pip's caches alone.
    line = _render.summary_message(report)
    assert "pip %s, rattler %s, uv %s)" % tuple(
        human_bytes(per_tool[tool]["disk_bytes"]) for tool in ("pip", "rattler", "uv")) in line
    assert "Cache on disk: %s (conda 0 B, pip %s, rattler %s, uv %s)" % ((human_bytes(host["cache_bytes"]),) + tuple(
        human_bytes(per_tool[tool]["disk_bytes"]) for tool in ("pip", "rattler", "uv"))) in _render._summary_lines(report["totals"])
