"""The fleet report's HTML page, rendered by a real browser from real facts.

The report playbook runs against the shared test fleet (read-only) plus one inventory host that
nobody answers for; headless Chromium then takes a screenshot of the page (decoded here with a
PNG reader of ``tests/browser.py``) and dumps the DOM.
"""

import json
import struct
import zlib

import pytest

from browser import browse, png_pixels, rgb
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes
from ansible_collections.pkgcache.fleet.plugins.plugin_utils._render import BAR_COLOURS, STATUS_COLOURS

WINDOW = (1000, 1000)
GHOST = "ghost"


@pytest.fixture(scope="module")
def report_dir(fleet, tmp_path_factory):
    """Run the report playbook once: the fleet plus a ghost host on a loopback address of the
    fleet's own subnet where nothing listens (connection refused, never leaves the machine)."""
    work = tmp_path_factory.mktemp("report-html")
    net = fleet.address_of(fleet.hosts[0]).rsplit(".", 1)[0]
    ghost = work / "ghost.ini"
    ghost.write_text("[fleet]\n{0} ansible_host={1}.250\n".format(GHOST, net))
    out = work / "report"
    done = fleet.playbook("-i", str(ghost), "pkgcache.fleet.report", "-e", "pkgcache_report_dir={0}".format(out))
    # rc 4: a host was unreachable - the ghost; the report must be written regardless.
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def report(report_dir):
    return json.loads((report_dir / "fleet-report.json").read_text())


def test_report_covers_fleet_and_names_the_unreachable_host(fleet, report):
    statuses = dict((host["host"], host["status"]) for host in report["hosts"])
    assert statuses == dict([(name, "ok") for name in fleet.hosts] + [(GHOST, "unreachable")])
    ghost = [host for host in report["hosts"] if host["host"] == GHOST][0]
    assert "refused" in ghost["error"].lower()
    assert all(host["cache_bytes"] > 0 for host in report["hosts"] if host["status"] == "ok")


def test_screenshot_shows_the_summary_bars_and_the_table(report_dir, tmp_path):
    shot = tmp_path / "page.png"
    browse(report_dir / "fleet-report.html", tmp_path / "profile",
           "--screenshot={0}".format(shot), "--window-size={0},{1}".format(*WINDOW))
    width, height, colours = png_pixels(shot.read_bytes())
    assert (width, height) == WINDOW
    assert len(colours) > 50, "page looks blank: {0} colour(s)".format(len(colours))
    for label in ("cache", "reclaimable"):
        assert rgb(BAR_COLOURS[label]) in colours, "no {0} bar drawn".format(label)
    for status in ("ok", "unreachable"):
        assert rgb(STATUS_COLOURS[status]) in colours, "no {0} badge".format(status)


def test_dom_carries_every_host_and_the_totals(fleet, report, report_dir, tmp_path):
    dom = browse(report_dir / "fleet-report.html", tmp_path / "profile", "--dump-dom")
    for name in fleet.hosts + [GHOST]:
        assert 'data-host="{0}"'.format(name) in dom
    assert dom.count('<tbody class="h"') == len(fleet.hosts) + 1
    assert 'data-status="unreachable"' in dom
    assert human_bytes(report["totals"]["cache_bytes"]) in dom
    assert human_bytes(report["totals"]["reclaimable_bytes"]) in dom
    assert '<b id="shown">{0}</b>'.format(len(fleet.hosts) + 1) in dom


def _chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_png_reader_decodes_filtered_rows():
    """A 2x2 RGB image: row 0 unfiltered, row 1 with the Up filter (stored as deltas)."""
    top, bottom = bytes([10, 20, 30, 200, 100, 50]), bytes([15, 20, 25, 200, 101, 40])
    up = bytes((b - a) & 0xFF for a, b in zip(top, bottom))
    raw = b"\x00" + top + b"\x02" + up
    png = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
           + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    assert png_pixels(png) == (2, 2, {top[:3], top[3:], bottom[:3], bottom[3:]})
    with pytest.raises(AssertionError):
        png_pixels(b"GIF89a")


ENV_PLAY = """\
- name: Environment facts
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Gather environment facts
      pkgcache.fleet.conda_env_facts: {{}}
    - name: Keep them for the test
      ansible.builtin.copy:
        content: "{{{{ ansible_facts.conda_envs | to_json }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}.json"
        mode: "0644"
      delegate_to: localhost
      become: false

- name: Write the fleet report
  ansible.builtin.import_playbook: pkgcache.fleet.write_report
"""


def test_the_environments_view_lists_every_environment_the_facts_name(fleet, tmp_path):
    """Issue 17: with conda_env_facts gathered, the report's environments view covers every
    environment of every host, unhealthy ones first, then the largest and the longest unchanged."""
    facts_dir = tmp_path / "facts"
    facts_dir.mkdir()
    play = tmp_path / "envs.yml"
    play.write_text(ENV_PLAY.format(out=facts_dir))
    done = fleet.playbook(str(play), "-e", "pkgcache_report_dir={0}".format(tmp_path / "report"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    facts = dict((name, json.loads((facts_dir / (name + ".json")).read_text())) for name in fleet.hosts)
    report = json.loads((tmp_path / "report" / "fleet-report.json").read_text())
    view = report["summary"]["environments"]
    envs = [(name, env) for name in fleet.hosts for env in facts[name]["environments"]]
    assert view["count"] == len(envs) > 0
    assert view["disk_bytes"] == sum(env["size"]["disk_bytes"] for _name, env in envs)
    assert sorted((e["host"], e["path"]) for e in view["unhealthy"]) == sorted(
        (name, env["path"]) for name, env in envs if not env["health"]["healthy"])
    largest = sorted(envs, key=lambda item: -item[1]["size"]["disk_bytes"])[:report["summary"]["top"]]
    assert [e["disk_bytes"] for e in view["largest"]] == [env["size"]["disk_bytes"] for _name, env in largest]
    assert [e["last_change"] for e in view["unchanged"]] == sorted(
        env["last_change"]["timestamp"] for _name, env in envs if env["last_change"]["timestamp"] is not None)[:len(view["unchanged"])]
    for host in report["hosts"]:
        assert host["environments"]["count"] == len(facts[host["host"]]["environments"])
    dom = browse(tmp_path / "report" / "fleet-report.html", tmp_path / "profile", "--dump-dom")
    assert dom.count('<tr data-healthy="') == len(view["unhealthy"]) + len(view["largest"]) + len(view["unchanged"])
