# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The last leg of facts -> clean -> report for names that are not UTF-8 (issue 13): what a module
returned printable reaches every report format intact, valid UTF-8, escaped for its format."""

from __future__ import annotations

import csv
import io
import json
import os

from hypothesis import given, settings, strategies as st
from markupsafe import escape

from ansible_collections.pkgcache.fleet.plugins.module_utils._text import printable, raw
from ansible_collections.pkgcache.fleet.plugins.plugin_utils import _render, _report
from unit.plugins.plugin_utils.hostvars import clean_result, cleaned, facts

NAMES = st.binary(min_size=1, max_size=24).filter(lambda b: b"/" not in b and b"\0" not in b)


@settings(max_examples=100, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=3, unique=True))
def test_escaped_names_from_a_clean_reach_every_format_intact(names):
    paths = [printable(os.fsdecode(b"/opt/conda/pkgs/" + name)) for name in names]
    result = clean_result(1024, removed=paths)
    result.update(failed=True, msg="removal failed for %d path(s): %s" % (len(paths), "; ".join(paths)))
    before = facts(conda=(5, 1))
    report = _report.build([("h1", cleaned(before, before, result))], [], "bytes")
    outputs = dict((fmt, render(report)) for fmt, render in _render.RENDERERS.items())
    for text in outputs.values():
        text.encode("utf-8")  # never a lone surrogate
    error = json.loads(outputs["json"])["hosts"][0]["error"]
    assert all(path in error for path in paths)
    assert [raw(p) for p in paths] == [os.fsdecode(b"/opt/conda/pkgs/" + n) for n in names]
    assert all(str(escape(path)) in outputs["html"] for path in paths)
    rows = list(csv.reader(io.StringIO(outputs["csv"], newline="")))
    assert len(rows) == 2 and all(path in rows[1][2] for path in paths)  # header + one row: no row injected
    table = [line for line in outputs["markdown"].splitlines() if line.startswith("| ")]
    assert len(table) == 2 and table[1].startswith("| h1 |") and table[1].endswith(" |")


def test_a_name_with_a_line_break_stays_in_its_csv_and_markdown_row():
    test_escaped_names_from_a_clean_reach_every_format_intact.hypothesis.inner_test([b"a\rb", b"c\nd|e"])
