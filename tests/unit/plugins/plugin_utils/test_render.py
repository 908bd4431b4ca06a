# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report renderers: JSON round-trips, CSV has one row per host, Markdown survives odd text,
and the HTML page is self-contained, escaped and draws every host to one scale."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import io
import json
from html.parser import HTMLParser

import pytest

from ansible_collections.pkgcache.fleet.plugins.plugin_utils import _render, _report
from unit.plugins.plugin_utils.hostvars import UNREACHABLE, clean_result, cleaned, facts

MiB = 1024 * 1024


@pytest.fixture
def report():
    before = facts(conda=(8 * MiB, 6 * MiB), pip=(MiB, MiB))
    after = facts(conda=(2 * MiB, 0), pip=(MiB, MiB))
    hosts = [
        ("web-1", cleaned(after, before, clean_result(6 * MiB, removed=["a"], freed={"/": 6 * MiB}))),
        ("<b>evil</b>|host", facts(conda=(2 * MiB, MiB))),
        ("db-1", dict(before, cache_clean_conda_result=dict(UNREACHABLE, msg="refused | <closed>\nagain"))),
        ("new-1", {}),
    ]
    return _report.build(hosts, ["web-1", "<b>evil</b>|host", "new-1"], "Caches & more")


class Page(HTMLParser):
    """Collects tags, attributes and text of a page."""

    def __init__(self):
        HTMLParser.__init__(self)
        self.tags = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html):
    page = Page()
    page.feed(html)
    return page


def test_json_round_trips(report):
    assert json.loads(_render.to_json(report)) == report


def test_csv_has_one_row_per_host_and_blank_cells_for_missing_parts(report):
    rows = list(csv.DictReader(io.StringIO(_render.to_csv(report))))
    assert [row["host"] for row in rows] == ["web-1", "<b>evil</b>|host", "db-1", "new-1"]
    assert tuple(rows[0]) == _render.CSV_COLUMNS
    assert rows[0]["before_bytes"] == str(9 * MiB) and rows[0]["after_bytes"] == str(3 * MiB)
    assert rows[1]["clean_outcome"] == "" and rows[1]["pip_bytes"] == ""
    assert rows[2]["status"] == "unreachable" and "refused" in rows[2]["error"]


def test_markdown_table_keeps_one_line_and_column_count_per_host(report):
    lines = _render.to_markdown(report).splitlines()
    table = [line for line in lines if line.startswith("| ") and not line.startswith("| host")]
    assert len(table) == 4
    assert all(line.replace("\\|", "").count("|") == 10 for line in table)
    assert any("9.0 MiB -> 3.0 MiB, 6.0 MiB less (cleaned)" in line for line in table)


def test_html_is_self_contained(report):
    page = parse(_render.to_html(report))
    tags = [tag for tag, _attrs in page.tags]
    assert "link" not in tags and "img" not in tags and "iframe" not in tags
    for _tag, attrs in page.tags:
        assert "src" not in attrs
        assert attrs.get("href", "#").startswith("#"), attrs
    assert "style" in tags and "script" in tags


def test_html_escapes_host_text(report):
    html = _render.to_html(report)
    assert "<b>evil</b>" not in html
    assert "&lt;b&gt;evil&lt;/b&gt;|host" in html
    assert "refused | &lt;closed&gt;" in html
    # In the details (JSON in a script element) no "<" can end the element early.
    details = html.split('<script type="application/json" id="details">', 1)[1].split("</script>", 1)[0]
    assert "<" not in details
    assert json.loads(details)[1][0][0] == "cache on disk"


def test_html_has_one_row_group_per_host_with_its_status(report):
    page = parse(_render.to_html(report))
    groups = [attrs for tag, attrs in page.tags if tag == "tbody"]
    assert [(g["data-host"], g["data-status"]) for g in groups] == [
        ("web-1", "ok"), ("<b>evil</b>|host", "ok"), ("db-1", "unreachable"), ("new-1", "no_data")]
    assert [g["id"] for g in groups] == ["h0", "h1", "h2", "h3"]


def test_host_details_say_what_a_card_said(report):
    details = dict((host["host"], dict(_render.host_details(host, report["generated"]))) for host in report["hosts"])
    assert details["web-1"]["clean"] == "9.0 MiB -> 3.0 MiB, 6.0 MiB less (cleaned)"
    assert details["web-1"]["conda"] == "1 cache(s), 2.0 MiB, 0 B reclaimable"
    assert details["db-1"]["error"].startswith("refused | <closed>")
    assert details["new-1"]["cache on disk"] == "not gathered" and "error" not in details["new-1"]


def test_trend_chart_scales_runs_into_the_box():
    trend = [{"time": "t%d" % i, "cache_bytes": c, "reclaimable_bytes": r}
             for i, (c, r) in enumerate([(100, 50), (200, 0), (400, 100)])]
    chart = _render.trend_chart(trend, width=100, height=40)
    cache, reclaimable = chart["series"]
    assert cache["points"] == "0.0,30.0 50.0,20.0 100.0,0.0"
    assert reclaimable["points"] == "0.0,35.0 50.0,40.0 100.0,30.0"
    assert (chart["max_bytes"], chart["first"], chart["last"], chart["runs"]) == (400, "t0", "t2", 3)
    assert _render.trend_chart([]) is None
    assert _render.trend_chart(trend[:1], width=100, height=40)["series"][0]["points"] == "0.0,0.0"


def test_a_users_template_extends_the_default_and_sees_the_context(report, tmp_path):
    own = tmp_path / "ours.html.j2"
    own.write_text('{% extends "fleet-report.html.j2" %}{% block header %}<h1 id="ours">{{ title }}: '
                   '{{ totals.hosts }} hosts, {{ tools | join(",") }}</h1>{% endblock %}')
    html = _render.to_html(report, template=str(own))
    assert '<h1 id="ours">Caches &amp; more: 4 hosts, conda,pip</h1>' in html
    assert 'id="hosts"' in html, "the blocks not overridden stay"
    plain = tmp_path / "plain.j2"
    plain.write_text("{% for host in hosts %}{{ host.host }}={{ host.reclaimable_bytes | bytes }};{% endfor %}")
    assert _render.to_html(report, template=str(plain)) == (
        "web-1=1.0 MiB;&lt;b&gt;evil&lt;/b&gt;|host=1.0 MiB;db-1=7.0 MiB;new-1=0 B;")


def test_every_format_has_a_renderer_and_an_extension():
    assert set(_render.RENDERERS) == set(_render.EXTENSIONS)


def test_a_check_run_says_would_not_cleaned():
    clean = {"check_mode": True, "planned_bytes": 3 * MiB, "outcome": "cleaned"}
    assert _render._clean_cell(clean) == "check mode: would free 3.0 MiB (would clean)"
    assert "(nothing to remove)" in _render._clean_cell(dict(clean, planned_bytes=0, outcome="nothing_to_remove"))


def test_the_html_table_has_an_error_column_and_no_size_for_a_host_never_seen(report):
    """Issue 14, finding 6: an unreachable host read "0 B reclaimable" and its error was not in the table."""
    html = _render.to_html(report)
    head = html.split('<table id="hosts">', 1)[1].split("</thead>", 1)[0]
    assert [text for text in parse(head).text if text.strip()] == [
        "host", "status", "free", "conda", "pip", "reclaimable", "last clean", "since last run", "error"]
    assert "refused | &lt;closed&gt;" in html.split('id="h2"', 1)[1].split("</tbody>", 1)[0]
    new = html.split('id="h3"', 1)[1].split("</tbody>", 1)[0]
    assert "0 B" not in new and new.count('<td data-v="">') == 6
    markdown = [line for line in _render.to_markdown(report).splitlines() if line.startswith("| new-1 |")]
    assert markdown == ["| new-1 | no data |  |  |  |  | not run |  |  |"]


def test_the_run_summary_line_has_exact_statuses_and_human_sizes(report):
    line = _render.summary_message(report, "/srv/reports")
    # conda 2 (web-1 after) + 2 (evil) + 8 (db-1) MiB, pip 1 + 1; reclaimable 1 + 1 + 7 MiB.
    assert line == ("4 host(s): 1 no data, 2 ok, 1 unreachable; caches 14.0 MiB (conda 12.0 MiB, pip 2.0 MiB), "
                    "9.0 MiB reclaimable; caches shrank by 6.0 MiB; written to /srv/reports")
