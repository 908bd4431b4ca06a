# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report history (issue 15): JSON Lines read back with ``json``, changes since each host's
previous run in the report's JSON and CSV, retention, two writers at once, corrupt lines."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import pytest

from ansible_collections.pkgcache.fleet.plugins.plugin_utils import _history, _render, _report
from unit.plugins.plugin_utils.hostvars import facts


def report(sizes, active=None):
    """A report over hosts named by *sizes*: ``{host: (conda disk, conda reclaimable)}``, or None
    for a host that gave no facts (it left the play)."""
    views = [(host, facts(conda=size) if size else {}) for host, size in sizes.items()]
    active = [host for host, size in sizes.items() if size] if active is None else active
    return _report.build(views, active, "history")


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(path, sizes, keep=100, append=True):
    warnings = []
    done = _history.update(str(path), report(sizes), keep, warnings.append, append)
    return done, warnings


def test_each_run_appends_a_record_per_host_and_the_next_report_carries_the_change(tmp_path):
    path = tmp_path / "fleet-report-history.jsonl"
    first, warnings = run(path, {"h1": (1000, 100), "h2": (5000, 0), "h3": None})
    assert warnings == [] and first["change"] is None
    assert [host["change"] for host in first["hosts"]] == [None, None, None]
    records = lines(path)
    assert [(r["host"], r["status"], r["cache_bytes"], r["reclaimable_bytes"]) for r in records] == [
        ("h1", "ok", 1000, 100), ("h2", "ok", 5000, 0), ("h3", "failed", None, None)]
    assert len({r["run"] for r in records}) == 1 and records[0]["time"] == first["generated"]

    second, _warnings = run(path, {"h1": (1500, 400), "h2": None, "h3": (700, 70), "h4": (10, 1)})
    change = dict((host["host"], host["change"]) for host in second["hosts"])
    assert change["h1"] == {"since": first["generated"], "cache_bytes": 500, "reclaimable_bytes": 300}
    assert change["h2"] is None, "no facts now: nothing to compare"
    assert change["h3"] is None and change["h4"] is None, "no earlier record with sizes"
    assert second["change"] == {"hosts": 1, "cache_bytes": 500, "reclaimable_bytes": 300}

    third, _warnings = run(path, {"h1": (1500, 400), "h2": (4000, 0), "h3": (900, 70)})
    change = dict((host["host"], host["change"]) for host in third["hosts"])
    assert change["h2"]["cache_bytes"] == -1000, "compared with its last record that had sizes"
    assert change["h2"]["since"] == first["generated"]
    assert change["h3"]["cache_bytes"] == 200 and change["h1"]["cache_bytes"] == 0
    assert len(lines(path)) == 3 + 4 + 3

    parsed = json.loads(_render.to_json(third))
    assert parsed["hosts"][1]["change"] == change["h2"] and parsed["change"]["hosts"] == 3
    rows = list(csv.DictReader(io.StringIO(_render.to_csv(third), newline="")))
    assert [(r["host"], r["cache_bytes_change"], r["reclaimable_bytes_change"]) for r in rows] == [
        ("h1", "0", "0"), ("h2", "-1000", "0"), ("h3", "200", "0")]
    assert rows[1]["previous_run"] == first["generated"]
    table = [line for line in _render.to_markdown(third).splitlines() if line.startswith("| h2 |")]
    assert "| cache -1000 B, reclaimable 0 B |" in table[0]
    assert 'data-v="200" class="grow">+200 B</td>' in _render.to_html(third)
    assert [(point["hosts"], point["cache_bytes"]) for point in third["trend"]] == [(2, 6000), (3, 2210), (3, 6400)]


def test_a_read_only_pass_reports_the_change_and_writes_nothing(tmp_path):
    path = tmp_path / "h.jsonl"
    run(path, {"h1": (1000, 100)})
    before = path.read_bytes()
    done, _warnings = run(path, {"h1": (900, 0)}, append=False)
    assert done["hosts"][0]["change"]["cache_bytes"] == -100
    assert path.read_bytes() == before


def test_retention_keeps_the_last_runs_whole(tmp_path):
    path = tmp_path / "h.jsonl"
    for size in range(1, 8):
        run(path, {"h1": (size, 0), "h2": (10 * size, 0)}, keep=3)
    records = lines(path)
    runs = []
    for record in records:
        if record["run"] not in runs:
            runs.append(record["run"])
    assert len(runs) == 3 and len(records) == 6
    assert [r["cache_bytes"] for r in records if r["host"] == "h1"] == [5, 6, 7]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.jsonl"], "no temp file left"


def test_corrupt_lines_are_skipped_with_a_warning_and_never_swallow_a_new_record(tmp_path):
    path = tmp_path / "h.jsonl"
    run(path, {"h1": (1000, 100), "h2": (50, 5)})
    good = path.read_text()
    path.write_text(good + "not json at all\n" + '["a", "list"]\n' + '{"run": "x", "host": "h2", "cache_bytes": "big"}\n'
                    + "\n" + '{"run": "y", "host": "h1", "cache_by')  # a writer killed mid-line
    done, warnings = run(path, {"h1": (1200, 100), "h2": (60, 5)})
    assert warnings == ["h.jsonl line %d is not a history record; skipped" % n for n in (3, 4, 5, 7)]
    assert done["hosts"][0]["change"]["cache_bytes"] == 200 and done["hosts"][1]["change"]["cache_bytes"] == 10
    text = path.read_text().splitlines()
    new = [json.loads(line) for line in text[-2:]]
    assert [(r["host"], r["cache_bytes"]) for r in new] == [("h1", 1200), ("h2", 60)]
    # The next run skips the same lines again and compares with the newest records.
    again, warnings = run(path, {"h1": (1300, 100), "h2": (60, 5)})
    assert len(warnings) == 4 and again["hosts"][0]["change"]["cache_bytes"] == 100


WRITER = r"""
import json, sys, time
from ansible_collections.pkgcache.fleet.plugins.plugin_utils import _history
path, name, runs, keep, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
while time.time() < start:  # both writers begin together
    pass
for n in range(runs):
    report = {"generated": "%s-%03d" % (name, n), "hosts": [
        {"host": "h%02d" % i, "status": "ok", "conda": {}, "pip": None, "cache_bytes": n, "reclaimable_bytes": n}
        for i in range(20)]}
    _history.update(path, report, keep, sys.stderr.write)
    print(json.dumps([report["generated"], (report["hosts"][0]["change"] or {}).get("since")]))
"""
RUNS = 150


def writers(path, keep):
    """Two processes each write RUNS reports over the same 20 hosts; ``[(time, since)]`` of every run."""
    start = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(RUNS), str(keep), start],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    pairs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and err == "", err
        pairs.extend(tuple(json.loads(line)) for line in out.splitlines())
    return pairs


@pytest.mark.parametrize("keep", [1000, 7], ids=["append-only", "with-retention"])
def test_two_writers_at_once_lose_and_tear_nothing(tmp_path, keep):
    path = tmp_path / "h.jsonl"
    pairs = writers(path, keep)
    # Each run compared with exactly the run before it: one chain through all 2 * RUNS runs, no
    # two runs reading the same "previous" (a lost lock) and no run left out (a lost append).
    times = set(t for t, _since in pairs)
    sinces = [since for _t, since in pairs]
    assert len(times) == 2 * RUNS and sinces.count(None) == 1
    assert len(set(sinces)) == len(sinces) and set(sinces) - {None} < times
    records = lines(path)  # every line parses
    by_run = {}
    for record in records:
        by_run.setdefault(record["run"], []).append(record)
    assert len(by_run) == min(2 * RUNS, keep)
    order = [record["run"] for record in records]
    # One run's 20 records, contiguous and complete: no other writer's line in between.
    assert all(order[i:i + 20] == [order[i]] * 20 for i in range(0, len(order), 20))
    assert all(len(run_records) == 20 for run_records in by_run.values())
    # The file ends with the chain's last runs.
    last = [t for t in times if t not in sinces]
    assert len(last) == 1 and records[-1]["time"] == last[0]
