"""The main job at fleet scale: `site` over 50 hosts, as AWX runs it, completes and reports every
host; its HTML report, opened in headless Chromium, has every host in one sortable table."""

from browser import Browser, png_pixels, rgb
from testfleet import layouts
from testfleet.fleet import running

from ansible_collections.pkgcache.fleet.plugins.plugin_utils._render import BAR_COLOURS, tool_columns
from test_playbooks import run_job  # pylint: disable=import-error

HOSTS = 50
ORDER = "Array.from(document.querySelectorAll('#hosts tbody')).map(function (b) { return b.dataset.host; })"


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
    check_page(job.report, tmp_path / "site" / "report" / "fleet-report.html", tmp_path)


def check_page(report, page, tmp_path):
    """The real fleet's page: one row group per host, sorting by reclaimable bytes matches the
    JSON, cleaned hosts show their last clean, and the screenshot (kept as ``report-50.png``)
    has the summary's bars."""
    hosts = report["hosts"]
    with Browser(tmp_path / "profile", width=1280, height=1000) as browser:
        browser.open(page.as_uri())
        assert browser.evaluate(ORDER) == [host["host"] for host in hosts]
        heads = ["host", "status", "free"] + tool_columns(report) + ["reclaimable", "last clean"]
        browser.evaluate("document.querySelectorAll('#hosts thead th')[%d].click()" % heads.index("reclaimable"))
        ranked = sorted(hosts, key=lambda host: host["reclaimable_bytes"])
        assert browser.evaluate(ORDER) == [host["host"] for host in ranked]
        cleaned = [host["host"] for host in hosts if host["last_clean"]]
        assert cleaned, "the site job cleaned no host"
        column = heads.index("last clean")
        shown = browser.evaluate("Array.from(document.querySelectorAll('#hosts tbody')).filter(function (b) {"
                                 " return b.rows[0].cells[%d].textContent.trim() !== ''; }).map(function (b) {"
                                 " return b.dataset.host; })" % column)
        assert sorted(shown) == sorted(cleaned)
        assert browser.evaluate("document.querySelectorAll('#top-cache tr').length") == 10
        browser.evaluate("window.scrollTo(0, 0)")
        shot = browser.screenshot()
    (tmp_path / "report-50.png").write_bytes(shot)
    _width, _height, colours = png_pixels(shot)
    assert rgb(BAR_COLOURS["cache"]) in colours and rgb(BAR_COLOURS["reclaimable"]) in colours
