"""Prometheus metrics on each host and the report's history (issue 15): the clean playbook with
``cache_clean_metrics_dir`` over SSH leaves a textfile that Prometheus' parser reads, equal to the
facts of the same host; the reports of successive runs share a history and carry the change."""

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_playbooks import CLEAN_TASK, FACT_TASK, PIP_CLEAN_TASK, STALE_AFTER_1S, run_job, task_results
from testfleet.fleet import running

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
METRICS = dict(STALE_AFTER_1S, cache_clean_metrics_dir=TEXTFILE_DIR)


@pytest.fixture(scope="module")
def fleet2(fleet_state_factory):
    with running(fleet_state_factory("metrics"), 2, ("multi_user", "single_root")) as up:
        yield up


def read_metrics(fleet, name):
    """``{(metric, labels as sorted tuple): value}`` of the host's file, or None when it has none."""
    path = fleet.root_of(name) / TEXTFILE_DIR.lstrip("/") / "pkgcache.prom"
    if not path.exists():
        return None
    samples = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        assert family.type == "gauge"
        for sample in family.samples:
            assert sample.timestamp is None
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def last_facts(job):
    """Each host's facts from the last facts task it ran (the refresh after cleaning)."""
    facts = {}
    for event in job.events:
        data = event["event_data"]
        if event["event"] == "runner_on_ok" and data.get("task") == FACT_TASK:
            facts[data["host"]] = data["res"]["ansible_facts"]
    return facts


def test_clean_writes_each_hosts_metrics_equal_to_its_facts_and_check_runs_write_nothing(fleet2, tmp_path):
    shared = tmp_path / "reports"
    extravars = dict(METRICS, pkgcache_report_dir=str(shared))
    check = run_job(fleet2, tmp_path / "check", "clean", check=True, extravars=extravars)
    assert (check.status, check.rc) == ("successful", 0), check.stdout[-3000:]
    assert [read_metrics(fleet2, name) for name in fleet2.hosts] == [None, None]

    preview = json.loads((shared / "fleet-report.json").read_text())
    job = run_job(fleet2, tmp_path / "real", "clean", extravars=extravars)
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    facts = last_facts(job)
    conda_results, pip_results = task_results(job, CLEAN_TASK), task_results(job, PIP_CLEAN_TASK)
    for name in fleet2.hosts:
        samples = read_metrics(fleet2, name)
        conda = [c for c in facts[name]["conda_cache"]["caches"] if c["exists"]]
        pip = facts[name]["pip_cache"]["caches"]
        assert conda
        for cache in conda:
            labels = dict(tool="conda", path=cache["path"])
            assert value(samples, "pkgcache_cache_size_bytes", **labels) == cache["disk_bytes"] > 0
            assert value(samples, "pkgcache_cache_reclaimable_bytes", **labels) == cache["reclaimable_bytes"]
            assert value(samples, "pkgcache_cache_category_reclaimable_bytes", category="tarballs", **labels) == \
                cache["categories"]["tarballs"]["reclaimable_bytes"]
        for path, cache in pip.items():
            labels = dict(tool=cache["tool"], path=path)
            assert value(samples, "pkgcache_cache_size_bytes", **labels) == cache["usage"]["disk_bytes"]
        assert len([key for key in samples if key[0] == "pkgcache_cache_size_bytes"]) == len(conda) + len(pip)
        for tool, result in (("conda", conda_results[name]), ("pip", pip_results[name])):
            freed = sum(c["freed_bytes"] for c in result["caches"] if c["kind"] == tool)
            assert value(samples, "pkgcache_last_clean_removed_bytes", tool=tool) == freed
        assert value(samples, "pkgcache_last_clean_removed_bytes", tool="conda") > 0
        assert value(samples, "pkgcache_last_clean_timestamp_seconds", tool="conda") > 1.7e9

    report = json.loads((shared / "fleet-report.json").read_text())
    for host in report["hosts"]:
        # The change since the preview run is what the clean took off the caches.
        assert host["change"]["since"] == preview["generated"]
        assert host["change"]["cache_bytes"] == -host["clean"]["reduced_bytes"] < 0
    assert report["change"]["hosts"] == len(fleet2.hosts)

    again = run_job(fleet2, tmp_path / "again", "clean", extravars=extravars)
    assert (again.status, again.rc) == ("successful", 0), again.stdout[-3000:]
    history = [json.loads(line) for line in (shared / "fleet-report-history.jsonl").read_text().splitlines()]
    runs = []
    for record in history:
        if record["run"] not in runs:
            runs.append(record["run"])
    assert len(runs) == 3 and len(history) == 3 * len(fleet2.hosts)
    sizes = dict((h["host"], h["cache_bytes"]) for h in report["hosts"])
    assert dict((r["host"], r["cache_bytes"]) for r in history if r["run"] == runs[1]) == sizes
    for name in fleet2.hosts:
        samples = read_metrics(fleet2, name)
        assert value(samples, "pkgcache_last_clean_removed_bytes", tool="conda") == 0, "nothing left to remove"
