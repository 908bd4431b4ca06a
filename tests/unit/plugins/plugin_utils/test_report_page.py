# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML report at 500 synthetic hosts in headless Chromium (issue 15): the page is driven
over the DevTools protocol - headers clicked, the filter typed into, a row opened - and its DOM
read back and compared with the report's JSON; then a screenshot, decoded with the PNG reader."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from browser import Browser, png_pixels, rgb
from ansible_collections.pkgcache.fleet.plugins.action.fleet_report import ARGUMENT_SPEC, check_args, produce
from ansible_collections.pkgcache.fleet.plugins.plugin_utils._render import BAR_COLOURS, STATUS_COLOURS, tool_columns
from unit.plugins.plugin_utils.hostvars import synthetic_fleet

HOSTS = 500
ORDER = "Array.from(document.querySelectorAll('#hosts tbody')).map(function (b) { return b.dataset.host; })"
SHOWN = ("Array.from(document.querySelectorAll('#hosts tbody'))"
         ".filter(function (b) { return b.getBoundingClientRect().height > 0; }).map(function (b) { return b.dataset.host; })")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Two runs over the same 500 hosts, the second with some caches grown, so the history
    gives changes and a two-point trend."""
    out = tmp_path_factory.mktemp("page")
    args = dict((key, spec.get("default")) for key, spec in ARGUMENT_SPEC.items())
    assert check_args(args) is None
    views, active = synthetic_fleet(HOSTS)
    produce(views, active, args, str(out), False, True, pytest.fail)
    for index, (_name, hostvars) in enumerate(views):
        conda = hostvars.get("ansible_facts", {}).get("conda_cache")
        if conda and index % 7 == 0:
            conda["totals"]["disk_bytes"] += index * 1000003
    report, _files, _history = produce(views, active, args, str(out), False, True, pytest.fail)
    assert json.loads((out / "fleet-report.json").read_text()) == json.loads(json.dumps(report))
    return out, report


@pytest.fixture(scope="module")
def page(written, tmp_path_factory):
    out, _report = written
    with Browser(tmp_path_factory.mktemp("profile"), width=1280, height=900) as browser:
        browser.open((out / "fleet-report.html").as_uri())
        yield browser


def column(report, name):
    heads = ["host", "status", "free"] + tool_columns(report) + ["reclaimable", "last clean", "since last run", "error"]
    return heads.index(name)


def click_header(page, index):
    page.evaluate("document.querySelectorAll('#hosts thead th')[%d].click()" % index)
    return page.evaluate(ORDER)


def expected(report, value, descending=False):
    """Host order for a sort on *value* (None: blank): blanks last, ties in report order (a
    reversed sort in Python keeps ties in their order too)."""
    rows = [(value(host), host["host"]) for host in report["hosts"]]
    present = sorted((row for row in rows if row[0] is not None), key=lambda row: row[0], reverse=descending)
    return [name for _value, name in present] + [name for value_, name in rows if value_ is None]


def seen(host):
    return host["conda"] is not None or host["pip"] is not None


def test_counts_match_the_report(page, written):
    _out, report = written
    totals = report["totals"]
    assert page.evaluate("document.querySelectorAll('#hosts tbody').length") == HOSTS
    assert page.evaluate("document.getElementById('shown').textContent") == str(HOSTS)
    cards = page.evaluate("Array.from(document.querySelectorAll('#totals .card')).map(function (c) {"
                          " return [c.firstChild.textContent.trim(), c.querySelector('b').textContent]; })")
    cards = dict(cards)
    assert cards["hosts"] == str(HOSTS)
    for status, count in totals["by_status"].items():
        if count:
            assert cards[status.replace("_", " ")] == str(count)
    near = sum(1 for host in report["hosts"] if any(
        fs["available_percent"] < 10 for fs in host["filesystems"]))
    assert near > 0 and cards["near full"] == str(near)
    assert page.evaluate("document.querySelectorAll('#top-reclaimable tr').length") == 10
    grown = [host["host"] for host in report["hosts"] if (host["change"] or {}).get("cache_bytes", 0) > 0]
    assert page.evaluate("document.querySelectorAll('#top-growth tr').length") == min(10, len(grown)) > 0
    assert page.evaluate("document.querySelectorAll('#trend polyline').length") == 2


def test_error_rows_are_visible_with_their_message(page, written):
    _out, report = written
    failing = [host for host in report["hosts"] if host["status"] in ("failed", "unreachable")]
    assert failing
    for host in failing:
        index = report["hosts"].index(host)
        box = page.evaluate("(function (b) { var r = b.getBoundingClientRect(); var e = b.rows[0].cells[b.rows[0].cells.length - 1];"
                            " return [r.height, e.textContent, getComputedStyle(e).color]; })"
                            "(document.getElementById('h%d'))" % index)
        assert box[0] > 0 and box[1] == host["error"] and box[2] == "rgb(198, 40, 40)"


def test_sorting_by_a_header_orders_the_rows_and_a_second_click_reverses(page, written):
    _out, report = written
    reclaimable = column(report, "reclaimable")

    def value(host):
        return host["reclaimable_bytes"] if seen(host) else None

    ascending = click_header(page, reclaimable)
    assert ascending == expected(report, value)
    assert page.evaluate("document.querySelectorAll('#hosts thead th')[%d].getAttribute('aria-sort')" % reclaimable) == "ascending"
    descending = click_header(page, reclaimable)
    assert descending == expected(report, value, descending=True)
    assert descending[0] == max((h for h in report["hosts"] if seen(h)), key=lambda h: h["reclaimable_bytes"])["host"]
    free = click_header(page, column(report, "free"))
    assert free == expected(report, lambda host: host["free"]["available_percent"] if host["free"] else None)
    growth = click_header(page, column(report, "since last run"))
    assert growth == expected(report, lambda host: host["change"]["cache_bytes"] if host["change"] else None)
    assert click_header(page, column(report, "host")) == sorted(host["host"] for host in report["hosts"])
    assert click_header(page, column(report, "host")) == sorted((host["host"] for host in report["hosts"]), reverse=True)


def test_filter_status_and_near_full_narrow_the_table_and_the_count(page, written):
    _out, report = written

    def apply(text="", status="", near=False):
        page.evaluate("(function () { var f = document.getElementById('filter'); f.value = %s;"
                      " f.dispatchEvent(new Event('input'));"
                      " var s = document.getElementById('status'); s.value = %s; s.dispatchEvent(new Event('change'));"
                      " var n = document.getElementById('near-only'); n.checked = %s; n.dispatchEvent(new Event('change')); })()"
                      % (json.dumps(text), json.dumps(status), json.dumps(near)))
        shown = page.evaluate(SHOWN)
        assert page.evaluate("document.getElementById('shown').textContent") == str(len(shown))
        return sorted(shown)

    assert apply(status="unreachable") == sorted(h["host"] for h in report["hosts"] if h["status"] == "unreachable")
    assert apply(text="LOCKED") == sorted(h["host"] for h in report["hosts"] if "locked" in (h["error"] or "").lower())
    assert apply(text="host-001") == sorted(h["host"] for h in report["hosts"] if "host-001" in h["host"])
    assert apply(near=True) == sorted(h["host"] for h in report["hosts"] if h["near_full"])
    assert apply(text="host-00", near=True) == sorted(
        h["host"] for h in report["hosts"] if h["near_full"] and "host-00" in h["host"])
    assert len(apply()) == HOSTS


def test_a_row_opens_its_details_on_demand(page, written):
    _out, report = written
    index = next(i for i, host in enumerate(report["hosts"]) if host["status"] == "unreachable")
    opened = ("(function (b) { return [b.rows[1].hidden, b.querySelector('button').getAttribute('aria-expanded'),"
              " Array.from(b.querySelectorAll('dt')).map(function (d) { return d.textContent; }),"
              " Array.from(b.querySelectorAll('dd')).map(function (d) { return d.textContent; })]; })"
              "(document.getElementById('h%d'))" % index)
    assert page.evaluate(opened)[:3] == [True, "false", []]
    page.evaluate("document.querySelector('#h%d button.toggle').click()" % index)
    hidden, expanded, terms, texts = page.evaluate(opened)
    assert (hidden, expanded) == (False, "true")
    assert terms[0] == "error" and texts[0] == report["hosts"][index]["error"]
    page.evaluate("document.querySelector('#h%d button.toggle').click()" % index)
    assert page.evaluate(opened)[:2] == [True, "false"]


def test_the_rattler_column_shows_each_hosts_rattler_caches(page, written):
    _out, report = written
    cells = page.evaluate("Array.from(document.querySelectorAll('#hosts tbody')).map(function (b) {"
                          " return [b.dataset.host, b.rows[0].cells[%d].dataset.v]; })" % column(report, "rattler"))
    expected = [[host["host"], str(host["tools"]["rattler"]["disk_bytes"]) if "rattler" in host["tools"] else ""]
                for host in report["hosts"]]
    assert sorted(cells) == sorted(expected) and sum(1 for _host, value in cells if value) > HOSTS // 10


def test_the_page_loads_nothing_from_anywhere(page):
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0
    assert page.evaluate("document.querySelectorAll('[src], link').length") == 0
    assert page.evaluate("Array.from(document.querySelectorAll('a')).every(function (a) {"
                         " return a.getAttribute('href').charAt(0) === '#'; })")


def test_screenshot_at_five_hundred_hosts_shows_summary_bars_and_table(page, written, tmp_path):
    _out, report = written
    page.evaluate("window.scrollTo(0, 0)")
    shot = page.screenshot()
    (tmp_path / "report-500.png").write_bytes(shot)
    width, height, colours = png_pixels(shot)
    assert width == 1280 and height > 600
    assert len(colours) > 50, "page looks blank: {0} colour(s)".format(len(colours))
    for name in ("reclaimable", "cache"):
        assert rgb(BAR_COLOURS[name]) in colours, "no {0} bar drawn".format(name)
    page.evaluate("document.getElementById('fleet').scrollIntoView()")
    shot = page.screenshot()
    (tmp_path / "report-500-table.png").write_bytes(shot)
    _w, _h, table = png_pixels(shot)
    assert rgb(STATUS_COLOURS["ok"]) in table and rgb(STATUS_COLOURS["unreachable"]) not in table
    page.evaluate("(function (s) { s.value = 'unreachable'; s.dispatchEvent(new Event('change')); })"
                  "(document.getElementById('status'))")
    _w, _h, unreachable = png_pixels(page.screenshot())
    assert rgb(STATUS_COLOURS["unreachable"]) in unreachable and rgb(STATUS_COLOURS["ok"]) not in unreachable
