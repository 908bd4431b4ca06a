"""The main job at fleet scale: `site` over 50 hosts, as AWX runs it, completes and reports every host."""

from testfleet import layouts
from testfleet.fleet import running

from test_playbooks import run_job  # pylint: disable=import-error

HOSTS = 50


def test_site_over_fifty_hosts_completes_and_reports_every_host(fleet_state_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("ANSIBLE_FORKS", "25")
    names = (layouts.BARE,) + layouts.CONDA_LAYOUTS
    with running(fleet_state_factory("fifty"), HOSTS, names) as fleet:
        job = run_job(fleet, tmp_path / "site", "site")
        assert job.status == "successful", job.stdout[-4000:]
        assert job.report is not None, "no fleet report written"
        assert sorted(h["host"] for h in job.report["hosts"]) == sorted(fleet.hosts)
        statuses = dict((h["host"], h["status"]) for h in job.report["hosts"])
        bare = set(h["name"] for h in fleet.describe() if h["layout"] == layouts.BARE)
        assert bare and all(statuses[host] == ("no_conda" if host in bare else "ok") for host in statuses), statuses
        stats = job.artifact_data
        assert stats, "set_stats sent no fleet totals"
