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
    assert "script" not in tags and "link" not in tags and "img" not in tags
    for _tag, attrs in page.tags:
        for name in ("src", "href"):
            assert name not in attrs
    assert "style" in tags


def test_html_escapes_host_text(report):
    html = _render.to_html(report)
    assert "<b>evil</b>" not in html
    assert "&lt;b&gt;evil&lt;/b&gt;|host" in html
    assert "refused | &lt;closed&gt;" in html


def test_html_has_a_section_and_status_per_host_and_bars_where_there_is_data(report):
    page = parse(_render.to_html(report))
    sections = [attrs for tag, attrs in page.tags if tag == "section"]
    assert [s["data-status"] for s in sections] == ["ok", "ok", "unreachable", "no_data"]
    # web-1, the escaped one and db-1 (facts from before it went away) have charts; new-1 has none.
    assert sum(1 for tag, _attrs in page.tags if tag == "svg") == 3


def test_bars_share_one_scale_so_the_largest_value_spans_the_chart(report):
    page = parse(_render.to_html(report))
    widths = [int(attrs["width"]) for tag, attrs in page.tags if tag == "rect"]
    span = 420 - 90 - 80
    assert max(widths) == span
    # web-1: before 9 MiB (the fleet's largest), after 3 MiB, reclaimable 1 MiB (pip left).
    assert widths[:3] == [span, round(span / 3), round(span / 9)]


def test_check_mode_bars_show_what_would_be_freed():
    state = facts(conda=(4 * MiB, 2 * MiB))
    host = _report.host_record("h1", cleaned(state, state, clean_result(2 * MiB), check_mode=True), True)
    assert _render.host_bars(host) == [("cache", 4 * MiB), ("reclaimable", 2 * MiB), ("would free", 2 * MiB)]
    assert _render.host_bars(_report.host_record("h2", state, True)) == [("cache", 4 * MiB), ("reclaimable", 2 * MiB)]


def test_every_format_has_a_renderer_and_an_extension():
    assert set(_render.RENDERERS) == set(_render.EXTENSIONS)


def test_a_check_run_says_would_not_cleaned():
    clean = {"check_mode": True, "planned_bytes": 3 * MiB, "outcome": "cleaned"}
    assert _render._clean_cell(clean) == "check mode: would free 3.0 MiB (would clean)"
    assert "(nothing to remove)" in _render._clean_cell(dict(clean, planned_bytes=0, outcome="nothing_to_remove"))


def test_the_html_table_has_an_error_column_and_no_size_for_a_host_never_seen(report):
    """Issue 14, finding 6: an unreachable host read "0 B reclaimable" and its error was not in the table."""
    page = parse(_render.to_html(report).split("<table>", 1)[1].join(["<table>", ""]))
    headers = [text for text in page.text if text in ("host", "status", "clean", "error", "reclaimable")]
    assert headers == ["host", "status", "reclaimable", "clean", "error"]
    table = _render.to_html(report).split("<table>", 1)[1]
    assert "refused | &lt;closed&gt;" in table
    new = table.split("<td>new-1</td>", 1)[1].split("</tr>", 1)[0]
    assert new.startswith("<td>no data</td><td></td><td></td><td></td><td></td>") and "0 B" not in new
    markdown = [line for line in _render.to_markdown(report).splitlines() if line.startswith("| new-1 |")]
    assert markdown == ["| new-1 | no data |  |  |  |  | not run |  |  |"]


def test_the_run_summary_line_has_exact_statuses_and_human_sizes(report):
    line = _render.summary_message(report, "/srv/reports")
    # conda 2 (web-1 after) + 2 (evil) + 8 (db-1) MiB, pip 1 + 1; reclaimable 1 + 1 + 7 MiB.
    assert line == ("4 host(s): 1 no data, 2 ok, 1 unreachable; caches 14.0 MiB (conda 12.0 MiB, pip 2.0 MiB), "
                    "9.0 MiB reclaimable; caches shrank by 6.0 MiB; written to /srv/reports")
