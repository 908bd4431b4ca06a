# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a scheduled clean runs (issue 19): ``pkgcache run`` over a policy file with a section per
command, every section checked before any runs, and the record it keeps, which the facts return
and the fleet report shows as the host's last self-clean."""

from __future__ import annotations

import csv
import io
import json
import os

from ansible_collections.pkgcache.fleet.plugins.module_utils import local_command, self_clean
from ansible_collections.pkgcache.fleet.plugins.plugin_utils import _render, _report

from .test_local_command import build, in_host

RECORD = "/var/lib/pkgcache/last-run.json"
SAFE = {"targets": ["tarballs", "packages"]}


def tree(fsroot):
    """Every path under the fixture host with its size: what a run may have changed."""
    found = {}
    for top, dirs, files in os.walk(str(fsroot)):
        for name in dirs + files:
            path = os.path.join(top, name)
            found[os.path.relpath(path, str(fsroot))] = os.lstat(path).st_size
    return found


def policy(fsroot, sections):
    (fsroot / "policy.json").write_text(json.dumps(sections))
    return "/policy.json"


def record_of(fsroot):
    return json.loads((fsroot / RECORD.lstrip("/")).read_text())


def test_run_removes_exactly_what_clean_plans_and_records_it(tmp_path):
    fsroot, _manifest = build(tmp_path, "multi_user")
    code, out, err = in_host(fsroot, ["clean", "--check", "--json", "--targets", "tarballs", "packages"])
    assert code == 0, err
    plan = json.loads(out)
    assert plan["paths"]
    path = policy(fsroot, {"clean": SAFE, "clean-pip": {"purge": True}})
    code, out, err = in_host(fsroot, ["run", "--policy", path, "--json", "--record", RECORD])
    assert code == local_command.OK, err
    results = json.loads(out)
    record = record_of(fsroot)
    assert sorted(record["runs"]["clean"]["removed"]) == sorted(plan["paths"]) == sorted(results["clean"]["removed"])
    assert record["runs"]["clean"]["removed_count"] == len(plan["paths"])
    assert record["runs"]["clean"]["planned_bytes"] == plan["planned_bytes"] > 0
    assert record["runs"]["clean"]["freed_bytes"] == sum(results["clean"]["freed_bytes"].values())
    assert (record["exit_code"], record["check_mode"], record["schema"]) == (0, False, 1)
    assert set(record["runs"]) == {"clean", "clean-pip"} and record["finished"].endswith("+00:00")

    fact = self_clean.read_fact(str(fsroot / RECORD.lstrip("/")))
    assert "removed" not in fact["runs"]["clean"] and fact["runs"]["clean"]["removed_count"] == len(plan["paths"])
    assert fact["summary"].startswith(record["finished"] + ": freed ")
    every = sum(part["removed_count"] for part in record["runs"].values())
    assert "removed %d path(s)" % every in fact["summary"] and every > len(plan["paths"]), "pip's count too"


def test_human_output_names_each_section_and_the_policy(tmp_path):
    fsroot, _manifest = build(tmp_path, "single_root")
    path = policy(fsroot, {"clean": SAFE})
    code, out, _err = in_host(fsroot, ["run", "--check", "--policy", path])
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("pkgcache run ") and "(check: nothing removed), policy /policy.json" in lines[0]
    assert lines[1].startswith("clean: would remove ")
    assert not (fsroot / RECORD.lstrip("/")).exists(), "no --record, no record"


def test_a_bad_section_stops_the_run_before_anything_is_read_and_is_recorded(tmp_path):
    fsroot, _manifest = build(tmp_path, "multi_user")
    path = policy(fsroot, {"clean": SAFE, "clean-pip": {"min_age": "7"}})
    before = tree(fsroot)
    code, _out, err = in_host(fsroot, ["run", "--policy", path, "--record", RECORD])
    assert code == local_command.BAD_OPTIONS and "[clean-pip]" in err
    after = tree(fsroot)
    assert set(after) - set(before) == {"var", "var/lib", "var/lib/pkgcache", RECORD.lstrip("/")}
    assert dict((k, v) for k, v in after.items() if k in before) == before, "nothing else changed"
    record = record_of(fsroot)
    assert record["exit_code"] == local_command.BAD_OPTIONS and "policy refused" in record["runs"]["run"]["msg"]
    fact = self_clean.read_fact(str(fsroot / RECORD.lstrip("/")))
    assert "run: policy refused" in fact["summary"]


def test_validate_checks_names_values_and_sections_and_reads_nothing_else(tmp_path):
    fsroot, _manifest = build(tmp_path, "single_root")
    cases = [
        ({"clean": SAFE, "clean-pip": {"min_age": "30d"}}, local_command.OK, "policy ok: clean, clean-pip"),
        ({"clean": {"min_aeg": "7d"}}, local_command.BAD_OPTIONS, "[clean]: unknown option(s) min_aeg"),
        ({"clean": {"busy_age": "soon"}}, local_command.BAD_OPTIONS, "[clean]"),
        ({"clean-pip": {"purge": True, "min_age": "7d"}}, local_command.BAD_OPTIONS, "cannot be combined"),
        ({"conda": SAFE}, local_command.BAD_OPTIONS, "unknown section(s) conda; valid: clean, clean-pip"),
        ({}, local_command.BAD_OPTIONS, "expected a JSON object"),
        ({"clean": {"keep_latest": "1"}}, local_command.BAD_OPTIONS, "[clean]: keep_latest takes a int, not \"1\""),
        ({"clean": {"keep_latest": True}}, local_command.BAD_OPTIONS, "keep_latest takes a int, not true"),
        ({"clean": {"targets": "tarballs"}}, local_command.BAD_OPTIONS, "targets takes a list"),
        ({"clean": {"targets": ["tarbals"]}}, local_command.BAD_OPTIONS, "targets: tarbals is not one of all, "),
        ({"clean": {"targets": None}}, local_command.BAD_OPTIONS, "targets takes a list, not null"),
        ({"clean-pip": {"min_age": None, "purge": True}}, local_command.OK, "policy ok: clean-pip"),
    ]
    for sections, expected, text in cases:
        code, out, err = in_host(fsroot, ["run", "--validate", "--policy", policy(fsroot, sections)])
        assert (code, text in out + err) == (expected, True), (sections, out, err)
    assert not (fsroot / "var").exists()


def test_a_refused_section_does_not_stop_the_next_and_the_worst_code_wins(tmp_path):
    fsroot, _manifest = build(tmp_path, "single_root")
    (fsroot / "notacache").mkdir()
    cache = fsroot / "root" / "pipcache" / "wheels" / "ab"
    cache.mkdir(parents=True)
    (cache / "demo-1.0-py3-none-any.whl").write_bytes(b"PK")
    path = policy(fsroot, {"clean": {"pkgs_dirs": ["/notacache"]},
                           "clean-pip": {"purge": True, "users": ["root"],
                                         "environment": {"PIP_CACHE_DIR": "/root/pipcache"}}})
    code, out, _err = in_host(fsroot, ["run", "--policy", path, "--record", RECORD])
    assert code == local_command.REFUSED
    assert out.splitlines()[1].startswith("clean: refused: ")
    record = record_of(fsroot)
    assert record["runs"]["clean"]["exit_code"] == local_command.REFUSED
    assert record["runs"]["clean-pip"]["exit_code"] == local_command.OK
    assert record["runs"]["clean-pip"]["removed_count"] == 1 and not cache.exists()


def test_clean_alone_keeps_a_record_too(tmp_path):
    fsroot, _manifest = build(tmp_path, "single_root")
    code, _out, _err = in_host(fsroot, ["clean", "--check", "--targets", "tarballs", "--record", RECORD])
    record = record_of(fsroot)
    assert code == 0 and record["check_mode"] is True and list(record["runs"]) == ["clean"]
    assert record["runs"]["clean"]["planned_bytes"] > 0 and "would" in self_clean.read_fact(
        str(fsroot / RECORD.lstrip("/")))["summary"]


def test_no_record_is_no_fact_and_a_broken_one_says_so(tmp_path):
    assert self_clean.read_fact(str(tmp_path / "none.json")) is None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    fact = self_clean.read_fact(str(broken))
    assert fact["error"].startswith(str(broken)) and fact["summary"].startswith("unreadable record")
    broken.write_text(json.dumps(["a list"]))
    assert "not a pkgcache run record" in self_clean.read_fact(str(broken))["error"]


def test_the_fleet_report_shows_each_hosts_last_self_clean(tmp_path):
    fsroot, _manifest = build(tmp_path, "multi_user")
    path = policy(fsroot, {"clean": SAFE})
    assert in_host(fsroot, ["run", "--policy", path, "--record", RECORD])[0] == 0
    fact = self_clean.read_fact(str(fsroot / RECORD.lstrip("/")))
    record = record_of(fsroot)
    facts = {"conda_cache": {"totals": {"disk_bytes": 10, "reclaimable_bytes": 0}}}
    hosts = [("cleans-itself", {"ansible_facts": dict(facts, pkgcache_self_clean=fact)}),
             ("plain", {"ansible_facts": facts})]
    report = _report.build(hosts, ["cleans-itself", "plain"], "t")
    mine = report["hosts"][0]["self_clean"]
    assert mine["finished"] == record["finished"] and mine["exit_code"] == 0 and mine["error"] is None
    assert mine["removed"] == len(record["runs"]["clean"]["removed"]) > 0
    assert mine["freed_bytes"] == record["runs"]["clean"]["freed_bytes"]
    assert report["hosts"][1]["self_clean"] is None
    assert report["totals"]["hosts_self_cleaning"] == 1
    assert report["totals"]["self_clean_freed_bytes"] == mine["freed_bytes"]

    markdown = _render.to_markdown(report)
    assert "| host | last self-clean |" in markdown
    row = [line for line in markdown.splitlines() if line.startswith("| cleans-itself | ")][-1]
    assert "(%s): freed " % record["finished"] in row and "%d path(s) removed" % mine["removed"] in row
    assert ("ago (" in row or "just now (" in row)
    assert "| plain | no record |" in markdown
    assert "Hosts that clean themselves: 1" in markdown
    rows = list(csv.DictReader(io.StringIO(_render.to_csv(report))))
    assert rows[0]["self_clean_finished"] == record["finished"] and rows[1]["self_clean_finished"] == ""
    page = _render.to_html(report)
    details = json.loads(page.split('<script type="application/json" id="details">', 1)[1].split("</script>", 1)[0])
    shown = [text for pairs in details for label, text in pairs if label == "last self-clean"]
    assert any("(%s): freed " % record["finished"] in text for text in shown)


def test_the_report_says_when_a_self_clean_failed_or_its_record_is_unreadable():
    failed = {"finished": "2026-01-01T03:00:00+00:00", "check_mode": False, "exit_code": 3, "runs": {
        "clean": {"exit_code": 3, "msg": "refused: /x is not a cache", "planned_bytes": 0, "freed_bytes": 0,
                  "removed_count": 0, "error_count": 0},
        "clean-pip": {"exit_code": 1, "msg": "removed 2", "planned_bytes": 9, "freed_bytes": 4096,
                      "removed_count": 2, "error_count": 1}}}
    hosts = [("a", {"ansible_facts": {"pkgcache_self_clean": failed}}),
             ("b", {"ansible_facts": {"pkgcache_self_clean": {"error": "/var/lib/pkgcache/last-run.json: denied"}}})]
    report = _report.build(hosts, ["a", "b"], "t")
    report["generated"] = "2026-01-04T03:00:00+00:00"
    markdown = _render.to_markdown(report)
    assert ("| a | 3 days ago (2026-01-01T03:00:00+00:00): freed 4.0 KiB, 2 path(s) removed, 1 removal(s) failed; "
            "clean: refused: /x is not a cache; clean-pip: removed 2 |") in markdown
    assert "| b | record unreadable: /var/lib/pkgcache/last-run.json: denied |" in markdown
