"""AWX job slicing and the fact cache, through ansible-runner as AWX runs them (issue 15).

Three slices of the report job run at the same time over disjoint thirds of the shared fleet
(read-only), each writing its hosts' results to one shared directory; the merge then builds one
report from that directory without contacting a host, and it equals the report of a single job
over every host.  The single job's facts land in ansible-runner's jsonfile fact cache (AWX's fact
storage); a later job given that cache, as AWX gives a job its stored facts, builds the report
again with every host's address pointing where nothing listens.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import ansible_runner
import pytest

SLICES = 3


def runner_env():
    return {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def start(work, playbook, inventory, extravars, limit=None, facts=None):
    """An ansible-runner job as AWX starts one, with *facts* (a fact cache directory) as the
    job's stored facts; ``(thread, runner)``."""
    work.mkdir(parents=True, exist_ok=True)
    if facts is not None:
        # ansible-runner points Ansible's jsonfile cache at artifacts/<ident>/fact_cache; AWX
        # fills it with the hosts' stored facts before the job starts.
        shutil.copytree(str(facts), str(work / "artifacts" / "job" / "fact_cache"))
    return ansible_runner.run_async(private_data_dir=str(work), ident="job", playbook="pkgcache.fleet." + playbook,
                                    inventory=[str(path) for path in inventory], extravars=extravars,
                                    limit=limit, envvars=runner_env(), quiet=True)


def finish(job):
    thread, runner = job
    thread.join()
    assert runner.status == "successful", runner.stdout.read()[-4000:]
    return runner


def comparable(report):
    """The report without what differs between two runs over the same hosts: its time, and the
    free space of the hosts' filesystems (other tests write to the machine's disk meanwhile)."""
    report = json.loads(json.dumps(report))
    report.pop("generated")
    report["trend"] = [dict(point, time=None, run=None) for point in report["trend"]]
    for host in report["hosts"]:
        for fs in host["filesystems"] + ([host["free"]] if host["free"] else []):
            fs.pop("available_bytes")
            fs.pop("available_percent")
    report["summary"]["near_full"]["hosts"] = sorted(entry["host"] for entry in report["summary"]["near_full"]["hosts"])
    return report


@pytest.fixture(scope="module")
def single(fleet, tmp_path_factory):
    """One report job over every host; its facts stay in the job's fact cache."""
    work = tmp_path_factory.mktemp("single")
    runner = finish(start(work / "job", "report", [fleet.inventory], {"pkgcache_report_dir": str(work / "report")}))
    assert runner.rc == 0
    assert len(list((work / "job" / "artifacts" / "job" / "fact_cache").iterdir())) == len(fleet.hosts)
    return work


def test_three_concurrent_slices_then_the_merge_equal_a_single_job(fleet, single, tmp_path):
    results = tmp_path / "results"
    hosts = list(fleet.hosts)
    jobs = [start(tmp_path / ("slice%d" % index), "report", [fleet.inventory],
                  {"pkgcache_report_mode": "slice", "pkgcache_results_dir": str(results)},
                  limit=",".join(hosts[index::SLICES])) for index in range(SLICES)]
    for job in jobs:
        finish(job)
    assert sorted(path.name for path in results.iterdir()) == sorted(name + ".json" for name in hosts)
    assert not list(tmp_path.glob("slice*/artifacts/*/pkgcache-report")), "a slice wrote a report of its own"
    for name in hosts:
        stored = json.loads((results / (name + ".json")).read_text())
        assert stored["host"] == name and stored["active"] and "conda_cache" in stored["view"]["ansible_facts"]

    # The merge contacts no host: every address now leads where nothing listens.
    dead = tmp_path / "dead.ini"
    dead.write_text("".join("%s ansible_host=127.0.0.1 ansible_port=9\n" % name for name in hosts))
    finish(start(tmp_path / "merge", "write_report", [dead],
                 {"pkgcache_report_mode": "merge", "pkgcache_results_dir": str(results),
                  "pkgcache_report_dir": str(tmp_path / "report")}))
    merged = json.loads((tmp_path / "report" / "fleet-report.json").read_text())
    alone = json.loads((single / "report" / "fleet-report.json").read_text())
    assert [host["host"] for host in merged["hosts"]] == hosts
    assert all(host["status"] == "ok" for host in merged["hosts"])
    assert comparable(merged) == comparable(alone)
    assert (tmp_path / "report" / "fleet-report.html").stat().st_size > 0


def test_a_missing_slice_leaves_its_hosts_without_data_and_says_so(fleet, single, tmp_path):
    results = tmp_path / "results"
    hosts = list(fleet.hosts)
    finish(start(tmp_path / "slice0", "report", [fleet.inventory],
                 {"pkgcache_report_mode": "slice", "pkgcache_results_dir": str(results)}, limit=hosts[0]))
    runner = finish(start(tmp_path / "merge", "write_report", [fleet.inventory],
                          {"pkgcache_report_mode": "merge", "pkgcache_results_dir": str(results),
                           "pkgcache_report_dir": str(tmp_path / "report")}))
    merged = json.loads((tmp_path / "report" / "fleet-report.json").read_text())
    assert [host["status"] for host in merged["hosts"]] == ["ok"] + ["no_data"] * (len(hosts) - 1)
    warnings = [w for event in runner.events for w in (event.get("event_data", {}).get("res") or {}).get("warnings", [])]
    assert sorted(w.split()[6] for w in warnings if w.startswith("no slice wrote a result for")) == sorted(hosts[1:])


def test_the_report_is_rebuilt_from_the_fact_cache_without_reconnecting(fleet, single, tmp_path):
    hosts = list(fleet.hosts)
    dead = tmp_path / "dead.ini"
    dead.write_text("".join("%s ansible_host=127.0.0.1 ansible_port=9\n" % name for name in hosts))
    finish(start(tmp_path / "rebuild", "write_report", [dead], {"pkgcache_report_dir": str(tmp_path / "report")},
                 facts=single / "job" / "artifacts" / "job" / "fact_cache"))
    rebuilt = json.loads((tmp_path / "report" / "fleet-report.json").read_text())
    alone = json.loads((single / "report" / "fleet-report.json").read_text())
    assert comparable(rebuilt) == comparable(alone)
