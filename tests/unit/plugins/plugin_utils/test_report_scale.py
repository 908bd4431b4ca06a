# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report at fleet scale (issue 15): caches per tool whatever the tool, the fullest
filesystem and the near-full threshold, the last clean, the summary's top lists, the
environments view (issue 17) and the CSV's per-tool columns."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import io

import pytest

from ansible_collections.pkgcache.fleet.plugins.action.fleet_report import ARGUMENT_SPEC, check_args, produce
from ansible_collections.pkgcache.fleet.plugins.plugin_utils import _render, _report
from unit.plugins.plugin_utils.hostvars import GiB, _cache, clean_result, cleaned, environments, facts, synthetic_fleet

MiB = 1 << 20


def fs(total, available, mount="/"):
    return {"mount": mount, "total_bytes": total, "free_bytes": available, "available_bytes": available}


def host_with(caches, pip_caches=None):
    hostvars = facts(conda=(0, 0), pip=(0, 0))
    hostvars["ansible_facts"]["conda_cache"]["caches"] = caches
    if pip_caches is not None:
        hostvars["ansible_facts"]["pip_cache"]["caches"] = pip_caches
    return hostvars


def test_caches_count_under_their_tool_field_and_conda_or_pip_without_one():
    hostvars = host_with(
        [_cache("/opt/conda/pkgs", 10 * MiB, 4 * MiB, fs(GiB, GiB // 2)),
         _cache("/root/micromamba/pkgs", 3 * MiB, MiB, fs(GiB, GiB // 2), tool="mamba"),
         {"path": "/gone", "exists": False}],
        {"/root/.cache/pip": {"tool": "pip", "usage": {"disk_bytes": 2 * MiB, "reclaimable_bytes": MiB}},
         "/root/.cache/uv": {"tool": "uv", "usage": {"disk_bytes": 5 * MiB, "reclaimable_bytes": 0}},
         "/root/.cache/rattler/cache": {"tool": "rattler", "usage": {"disk_bytes": 7 * MiB, "reclaimable_bytes": 7}}})
    host = _report.host_record("h", hostvars, True)
    assert host["tools"] == {
        "conda": {"caches": 1, "disk_bytes": 10 * MiB, "reclaimable_bytes": 4 * MiB},
        "mamba": {"caches": 1, "disk_bytes": 3 * MiB, "reclaimable_bytes": MiB},
        "pip": {"caches": 1, "disk_bytes": 2 * MiB, "reclaimable_bytes": MiB},
        "uv": {"caches": 1, "disk_bytes": 5 * MiB, "reclaimable_bytes": 0},
        "rattler": {"caches": 1, "disk_bytes": 7 * MiB, "reclaimable_bytes": 7}}
    report = _report.build([("h", hostvars), ("g", facts(pip=(MiB, 0)))], ["h", "g"], "t")
    assert report["totals"]["tools"]["pip"] == {"hosts": 2, "caches": 2, "disk_bytes": 3 * MiB, "reclaimable_bytes": MiB}
    assert _render.tool_columns(report) == ["conda", "pip", "mamba", "rattler", "uv"]
    rows = list(csv.DictReader(io.StringIO(_render.to_csv(report))))
    assert rows[0]["rattler_bytes"] == str(7 * MiB) and rows[0]["uv_reclaimable_bytes"] == "0"
    assert rows[1]["mamba_bytes"] == "" and rows[1]["pip_bytes"] == str(MiB)


def test_the_fullest_filesystem_is_shown_and_one_below_the_threshold_makes_the_host_near_full():
    hostvars = host_with([_cache("/opt/conda/pkgs", 0, 0, fs(100 * GiB, 30 * GiB)),
                          _cache("/data/pkgs", 0, 0, fs(2000 * GiB, 150 * GiB, "/data")),
                          _cache("/opt/conda2/pkgs", 0, 0, fs(100 * GiB, 30 * GiB))])
    report = _report.build([("h", hostvars), ("bare", facts(pip=(MiB, 0)))], ["h", "bare"], "t")
    host = report["hosts"][0]
    assert [f["mount"] for f in host["filesystems"]] == ["/", "/data"], "each mount once"
    assert host["free"]["mount"] == "/data" and host["free"]["available_percent"] == 7.5
    assert host["near_full"] and report["summary"]["near_full"]["hosts"][0]["host"] == "h"
    assert report["hosts"][1]["free"] is None and not report["hosts"][1]["near_full"]
    # By bytes the root filesystem has less left, and neither is below 20 GiB.
    _report.summarize(report, ("bytes", 20 * GiB), 10)
    assert host["free"]["mount"] == "/" and not host["near_full"]
    _report.summarize(report, ("bytes", 40 * GiB), 10)
    assert host["near_full"] and report["summary"]["near_full"]["hosts"] == [dict(host["free"], host="h")]
    rows = list(csv.DictReader(io.StringIO(_render.to_csv(report))))
    assert (rows[0]["free_mount"], rows[0]["available_bytes"], rows[0]["near_full"]) == ("/", str(30 * GiB), "true")


def test_last_clean_is_the_latest_of_this_runs_clean_and_the_hosts_own():
    before = facts(conda=(8 * MiB, 6 * MiB))
    after = facts(conda=(2 * MiB, 0))
    ran = cleaned(after, before, clean_result(6 * MiB, removed=["a"], freed={"/": 6 * MiB}))
    ran["ansible_facts"]["pkgcache_self_clean"] = {"finished": "2026-01-01T02:00:00+00:00", "runs": {}}
    report = _report.build([("h", ran)], ["h"], "t")
    assert report["hosts"][0]["last_clean"] == {"time": report["generated"], "how": "run", "freed_bytes": 6 * MiB}
    checked = cleaned(after, before, clean_result(6 * MiB), check_mode=True)
    checked["ansible_facts"]["pkgcache_self_clean"] = {
        "finished": "2026-01-01T02:00:00+00:00", "exit_code": 0, "runs": {"conda": {"freed_bytes": 5, "exit_code": 0}}}
    report = _report.build([("h", checked), ("n", before)], ["h", "n"], "t")
    assert report["hosts"][0]["last_clean"] == {"time": "2026-01-01T02:00:00+00:00", "how": "scheduled", "freed_bytes": 5}
    assert report["hosts"][1]["last_clean"] is None


def test_top_lists_rank_positive_values_largest_first_and_cut_at_top():
    views = [("h%d" % i, facts(conda=(i * MiB, (9 - i) * MiB))) for i in range(10)]
    report = _report.build(views, [name for name, _view in views], "t")
    for index, host in enumerate(report["hosts"]):
        host["change"] = {"cache_bytes": (index - 5) * MiB} if index % 2 else None
    summary = _report.summarize(report, ("percent", 10.0), 3)["summary"]
    assert [row["host"] for row in summary["top_cache"]] == ["h9", "h8", "h7"]
    assert [row["host"] for row in summary["top_reclaimable"]] == ["h0", "h1", "h2"]
    assert summary["top_growth"] == [{"host": "h9", "bytes": 4 * MiB}, {"host": "h7", "bytes": 2 * MiB}]


def test_environments_view_puts_unhealthy_first_then_the_largest_and_the_longest_unchanged():
    import random

    views = []
    for index in range(4):
        hostvars = facts(conda=(MiB, 0))
        hostvars["ansible_facts"]["conda_envs"] = environments(random.Random(index), 5, 1790000000)
        views.append(("h%d" % index, hostvars))
    views.append(("no-envs", facts(conda=(MiB, 0))))
    report = _report.build(views, [name for name, _view in views], "t")
    envs = [env for _name, view in views for env in view["ansible_facts"].get("conda_envs", {}).get("environments", [])]
    view = _report.summarize(report, ("percent", 10.0), 4)["summary"]["environments"]
    assert (view["hosts"], view["count"]) == (4, 20)
    assert len(view["unhealthy"]) == sum(1 for env in envs if not env["health"]["healthy"]) > 0
    assert all(not env["healthy"] and env["problems"] for env in view["unhealthy"])
    counts = [sum(env["problems"].values()) for env in view["unhealthy"]]
    assert counts == sorted(counts, reverse=True)
    assert [env["disk_bytes"] for env in view["largest"]] == sorted((e["size"]["disk_bytes"] for e in envs), reverse=True)[:4]
    assert [env["last_change"] for env in view["unchanged"]] == sorted(e["last_change"]["timestamp"] for e in envs)[:4]
    assert report["hosts"][4]["environments"] is None
    assert _report.build([("h", facts(conda=(1, 0)))], ["h"], "t")["summary"]["environments"] is None
    html = _render.to_html(report)
    assert html.count('data-healthy="0"') >= len(view["unhealthy"]) and 'id="envs-unchanged"' in html


@pytest.mark.parametrize("value, message", [
    ("12x", "near_full"), ("120%", "near_full"), (None, None), ("5G", None)])
def test_near_full_option_is_checked_before_anything_is_written(value, message):
    args = dict((key, spec.get("default")) for key, spec in ARGUMENT_SPEC.items())
    args["near_full"] = value or "10%"
    error = check_args(args)
    assert (error is None) if message is None else (message in error)


def test_the_action_writes_every_format_at_five_hundred_hosts(tmp_path):
    views, active = synthetic_fleet(500)
    args = dict((key, spec.get("default")) for key, spec in ARGUMENT_SPEC.items())
    assert check_args(args) is None
    warnings = []
    report, files, history = produce(views, active, args, str(tmp_path), False, True, warnings.append)
    assert warnings == [] and len(report["hosts"]) == 500 and len(report["trend"]) == 1
    assert all((tmp_path / name).is_file() for name in ("fleet-report.json", "fleet-report.csv",
                                                        "fleet-report.md", "fleet-report.html"))
    assert history.endswith("fleet-report-history.jsonl") and len(files) == 4
