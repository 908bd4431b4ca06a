# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render a fleet report (see ``_report.build``) as JSON, CSV, Markdown and one HTML page.

The HTML page is self-contained - inline CSS and inline SVG, no scripts, fonts or images from
anywhere - so it can be mailed, attached to a ticket or opened on an air-gapped admin host.
Every value that came from a host is escaped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import datetime
import io
import json
from html import escape

from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes

EXTENSIONS = {"json": "json", "csv": "csv", "markdown": "md", "html": "html"}

CSV_COLUMNS = (
    "host", "status", "error", "conda_bytes", "conda_reclaimable_bytes", "pip_bytes",
    "pip_reclaimable_bytes", "cache_bytes", "reclaimable_bytes", "clean_outcome", "check_mode",
    "planned_bytes", "freed_bytes", "reduced_bytes", "before_bytes", "after_bytes", "removed",
    "backup_copied", "backup_bytes_copied",
    "self_clean_finished", "self_clean_exit_code", "self_clean_freed_bytes", "self_clean_removed",
    "previous_run", "cache_bytes_change", "reclaimable_bytes_change",
)

BAR_COLOURS = {
    "cache": "#4e79a7", "reclaimable": "#f28e2b", "before": "#76b7b2", "after": "#59a14f",
    "would free": "#edc948",
}
STATUS_COLOURS = {"ok": "#2e7d32", "incomplete": "#ef6c00", "no_conda": "#558b2f", "failed": "#c62828",
                  "unreachable": "#6a1b9a", "no_data": "#757575"}


def to_json(report):
    return json.dumps(report, indent=1, sort_keys=True) + "\n"


def csv_row(host):
    """One flat row per host; empty cells where a part was not gathered or cleaning did not run."""
    conda = host["conda"] or {}
    pip = host["pip"] or {}
    clean = host["clean"] or {}
    backup = host["backup"] or {}
    self_clean = host.get("self_clean") or {}
    change = host.get("change") or {}
    return {
        "host": host["host"], "status": host["status"], "error": host["error"] or "",
        "conda_bytes": conda.get("disk_bytes", ""),
        "conda_reclaimable_bytes": conda.get("reclaimable_bytes", ""),
        "pip_bytes": pip.get("disk_bytes", ""), "pip_reclaimable_bytes": pip.get("reclaimable_bytes", ""),
        "cache_bytes": host["cache_bytes"], "reclaimable_bytes": host["reclaimable_bytes"],
        "clean_outcome": clean.get("outcome", ""),
        "check_mode": "" if not clean else str(clean["check_mode"]).lower(),
        "planned_bytes": clean.get("planned_bytes", ""), "freed_bytes": clean.get("freed_bytes", ""),
        "reduced_bytes": clean.get("reduced_bytes", ""),
        "before_bytes": clean.get("before_bytes", ""),
        "after_bytes": "" if clean.get("after_bytes") is None else clean["after_bytes"],
        "removed": clean.get("removed", ""),
        "backup_copied": backup.get("copied", ""), "backup_bytes_copied": backup.get("bytes_copied", ""),
        "self_clean_finished": self_clean.get("finished") or "",
        "self_clean_exit_code": "" if self_clean.get("exit_code") is None else self_clean["exit_code"],
        "self_clean_freed_bytes": self_clean.get("freed_bytes", ""), "self_clean_removed": self_clean.get("removed", ""),
        "previous_run": change.get("since") or "", "cache_bytes_change": change.get("cache_bytes", ""),
        "reclaimable_bytes_change": change.get("reclaimable_bytes", ""),
    }


def to_csv(report):
    out = io.StringIO()
    # RFC 4180 line ends: the writer then quotes a field holding either \r or \n (a file name may).
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for host in report["hosts"]:
        writer.writerow(csv_row(host))
    return out.getvalue()


def _md(value):
    return " ".join(str(value).replace("|", "\\|").splitlines())


def _size(value):
    return "" if value is None or value == "" else human_bytes(value)


def _reclaimable(host):
    """Blank for a host whose caches were never seen (unreachable before facts): not "0 B"."""
    return "" if host["conda"] is None and host["pip"] is None else human_bytes(host["reclaimable_bytes"])


def _status(status):
    return status.replace("_", " ")


# How a clean outcome reads, in a real run and in a check run (which changed nothing).
OUTCOME_WORDS = {
    "cleaned": ("cleaned", "would clean"),
    "nothing_to_remove": ("nothing to remove", "nothing to remove"),
    "skipped": ("every cache skipped", "every cache would be skipped"),
    "failed": ("failed", "failed"),
    "unreachable": ("unreachable", "unreachable"),
}


def _clean_cell(clean):
    """The du-like drop (before - after) is shown, not the statvfs gain: on a filesystem others
    write to during the run, the latter moves with them (both are in JSON and CSV)."""
    if not clean:
        return "not run"
    if clean["check_mode"]:
        return "check mode: would free %s (%s)" % (human_bytes(clean["planned_bytes"]),
                                                   OUTCOME_WORDS.get(clean["outcome"], clean["outcome"])[1])
    return "%s -> %s, %s less (%s)" % (human_bytes(clean["before_bytes"]), _size(clean["after_bytes"]),
                                       human_bytes(clean["reduced_bytes"]), clean["outcome"])


def _ago(finished, generated):
    """``3 days ago`` (or hours, minutes) from two ISO times; empty when either is unreadable."""
    try:
        seconds = (datetime.datetime.fromisoformat(generated) - datetime.datetime.fromisoformat(finished)).total_seconds()
    except (TypeError, ValueError):
        return ""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return "%d %s%s ago" % (count, unit, "" if count == 1 else "s")
    return "just now"


def _self_clean_cell(self_clean, generated):
    """The host's last scheduled clean as a person says it: when, then what it freed."""
    if not self_clean:
        return "no record"
    if self_clean["error"]:
        return "record unreadable: %s" % self_clean["error"]
    ago = _ago(self_clean["finished"], generated)
    when = "%s (%s)" % (ago, self_clean["finished"]) if ago else str(self_clean["finished"])
    if self_clean["check_mode"]:
        text = "%s, check run: would have freed %s" % (when, human_bytes(self_clean["planned_bytes"]))
    else:
        text = "%s: freed %s, %d path(s) removed" % (when, human_bytes(self_clean["freed_bytes"]), self_clean["removed"])
    if self_clean["errors"]:
        text += ", %d removal(s) failed" % self_clean["errors"]
    if self_clean["msg"]:
        text += "; %s" % self_clean["msg"]
    return text


def _signed(count):
    return ("+" if count > 0 else "") + human_bytes(count)


def _change_cell(change):
    """A host's (or the fleet's) change since the previous run, from the history."""
    if not change:
        return ""
    return "cache %s, reclaimable %s" % (_signed(change.get("cache_bytes", 0)), _signed(change.get("reclaimable_bytes", 0)))


def _backup_cell(backup):
    if not backup:
        return ""
    text = "copied %d tarball(s), %s" % (backup["copied"], human_bytes(backup["bytes_copied"]))
    return text + ("; %d failed" % backup["failed"] if backup["failed"] else "")


def _by_status(totals):
    return ", ".join("%d %s" % (n, _status(status)) for status, n in sorted(totals["by_status"].items()) if n)


def summary_message(report, written_to=None):
    """The one line a run prints: hosts by exact status, sizes in binary units, conda and pip apart."""
    totals = report["totals"]
    line = "%d host(s): %s; caches %s (conda %s, pip %s), %s reclaimable" % (
        totals["hosts"], _by_status(totals) or "none", human_bytes(totals["cache_bytes"]),
        human_bytes(totals["conda_bytes"]), human_bytes(totals["pip_bytes"]), human_bytes(totals["reclaimable_bytes"]))
    if totals["check_mode"] and totals["planned_bytes"]:
        line += "; a real run would free %s" % human_bytes(totals["planned_bytes"])
    elif totals["reduced_bytes"]:
        line += "; caches shrank by %s" % human_bytes(totals["reduced_bytes"])
    return line + ("; written to %s" % written_to if written_to else "")


def _summary_lines(totals):
    by_status = _by_status(totals)
    lines = [
        "Hosts: %d (%s)" % (totals["hosts"], by_status or "none"),
        "Cache on disk: %s (conda %s, pip %s)" % (
            human_bytes(totals["cache_bytes"]), human_bytes(totals["conda_bytes"]), human_bytes(totals["pip_bytes"])),
        "Reclaimable: %s" % human_bytes(totals["reclaimable_bytes"]),
    ]
    if totals["hosts_backed_up"]:
        lines.append("Backed up: %s from %d host(s)" % (human_bytes(totals["backup_bytes_copied"]),
                                                        totals["hosts_backed_up"]))
    if totals["hosts_cleaned"] or totals["hosts_skipped"] or totals["planned_bytes"]:
        verb = "Would free" if totals["check_mode"] else "Caches shrank by"
        amount = totals["planned_bytes"] if totals["check_mode"] else totals["reduced_bytes"]
        nothing = totals["hosts_nothing_to_remove"]
        lines.append("%s: %s; hosts %s %d, nothing to remove %d, every cache skipped %d" % (
            verb, human_bytes(amount), "to clean" if totals["check_mode"] else "cleaned",
            totals["hosts_cleaned"], nothing, totals["hosts_skipped"] - nothing))
    if totals.get("hosts_self_cleaning"):
        lines.append("Hosts that clean themselves: %d (their last runs freed %s)" % (
            totals["hosts_self_cleaning"], human_bytes(totals["self_clean_freed_bytes"])))
    return lines


def to_markdown(report):
    lines = ["# %s" % _md(report["title"]), "", "Generated %s" % report["generated"], ""]
    lines += ["- %s" % line for line in _summary_lines(report["totals"])]
    if report.get("change"):
        lines.append("- Since the last run (%d host(s)): %s" % (report["change"]["hosts"], _change_cell(report["change"])))
    for entry in report.get("policies") or []:
        lines += ["", "Clean policy on %s:" % _md(", ".join(entry["hosts"])), ""]
        lines += ["- `%s`: `%s`" % (name, json.dumps(value)) for name, value in sorted(entry["policy"].items())]
    lines += ["", "| host | status | conda | pip | reclaimable | since last run | clean | backup | error |",
              "|---|---|---:|---:|---:|---|---|---|---|"]
    for host in report["hosts"]:
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            _md(host["host"]), _status(host["status"]), _size((host["conda"] or {}).get("disk_bytes")),
            _size((host["pip"] or {}).get("disk_bytes")), _reclaimable(host), _change_cell(host.get("change")),
            _md(_clean_cell(host["clean"])), _md(_backup_cell(host["backup"])), _md(host["error"] or "")))
    if any(host.get("self_clean") for host in report["hosts"]):
        lines += ["", "| host | last self-clean |", "|---|---|"]
        lines += ["| %s | %s |" % (_md(host["host"]), _md(_self_clean_cell(host.get("self_clean"), report["generated"])))
                  for host in report["hosts"]]
    return "\n".join(lines) + "\n"


def host_bars(host):
    """(label, bytes) pairs drawn for one host.

    Without cleaning: size vs reclaimable.  After a real clean: before, after and what is still
    reclaimable.  After a check-mode clean: size, reclaimable and what a real run would free.
    """
    clean = host["clean"]
    if clean and not clean["check_mode"]:
        return [("before", clean["before_bytes"]), ("after", clean["after_bytes"] or 0),
                ("reclaimable", host["reclaimable_bytes"])]
    bars = [("cache", host["cache_bytes"]), ("reclaimable", host["reclaimable_bytes"])]
    if clean:
        bars.append(("would free", clean["planned_bytes"]))
    return bars


def svg_bars(bars, scale, width=420, row=22):
    """A horizontal bar chart; *scale* is the fleet's largest value so hosts compare at a glance."""
    label_w, value_w = 90, 80
    span = width - label_w - value_w
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img">' % (width, row * len(bars))]
    for index, (label, value) in enumerate(bars):
        y = index * row
        length = 0 if not scale else max(1 if value else 0, int(round(span * float(value) / scale)))
        parts.append(
            '<text x="0" y="%d" class="l">%s</text>'
            '<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d bytes</title></rect>'
            '<text x="%d" y="%d" class="v">%s</text>' % (
                y + 15, escape(label), label_w, y + 3, length, row - 6, BAR_COLOURS[label],
                escape(label), value, label_w + length + 6, y + 15, escape(human_bytes(value))))
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}
.meta{color:#666;margin-bottom:16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:20px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:20px}
.hosts{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:12px}
.host{background:#fff;border:1px solid #ddd;border-left:6px solid #999;border-radius:6px;padding:10px 14px}
.host h2{font-size:16px;margin:0 0 6px}
.badge{color:#fff;border-radius:4px;padding:1px 6px;font-size:12px;margin-left:8px}
.error{color:#c62828;font-family:monospace;white-space:pre-wrap;word-break:break-word}
svg text{font-size:12px;fill:#333}
table{border-collapse:collapse;margin-top:20px;background:#fff}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
"""


def _card(label, value):
    return '<div class="card">%s<b>%s</b></div>' % (escape(label), escape(value))


def _host_section(host, scale, generated):
    colour = STATUS_COLOURS[host["status"]]
    body = ['<section class="host" id="host-%s" data-status="%s" style="border-left-color:%s">' % (
        escape(host["host"], quote=True), host["status"], colour),
        '<h2>%s<span class="badge" style="background:%s">%s</span></h2>' % (
            escape(host["host"]), colour, escape(_status(host["status"])))]
    if host["error"]:
        body.append('<div class="error">%s</div>' % escape(host["error"]))
    if host["conda"] is not None or host["pip"] is not None:
        body.append(svg_bars(host_bars(host), scale))
        body.append('<div class="meta">%s</div>' % escape(_clean_cell(host["clean"])))
    if host["backup"]:
        body.append('<div class="meta">backup: %s</div>' % escape(_backup_cell(host["backup"])))
    if host.get("self_clean"):
        body.append('<div class="meta self-clean">last self-clean: %s</div>' % escape(
            _self_clean_cell(host["self_clean"], generated)))
    body.append("</section>")
    return "".join(body)


def _table(report):
    rows = ["<table><tr><th>host</th><th>status</th><th>conda</th><th>pip</th><th>reclaimable</th>"
            "<th>since last run</th><th>clean</th><th>error</th></tr>"]
    for host in report["hosts"]:
        rows.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                    '<td class="error">%s</td></tr>' % (
                        escape(host["host"]), escape(_status(host["status"])),
                        escape(_size((host["conda"] or {}).get("disk_bytes"))),
                        escape(_size((host["pip"] or {}).get("disk_bytes"))), escape(_reclaimable(host)),
                        escape(_change_cell(host.get("change"))),
                        escape(_clean_cell(host["clean"])), escape(host["error"] or "")))
    rows.append("</table>")
    return "".join(rows)


def to_html(report):
    totals = report["totals"]
    scale = max([value for host in report["hosts"] for _label, value in host_bars(host)] or [0])
    cards = [_card("hosts", "%d" % totals["hosts"])]
    cards += [_card(status, "%d" % n) for status, n in sorted(totals["by_status"].items()) if n]
    cards += [_card("cache on disk", human_bytes(totals["cache_bytes"])),
              _card("reclaimable", human_bytes(totals["reclaimable_bytes"]))]
    if totals["check_mode"]:
        cards.append(_card("would free", human_bytes(totals["planned_bytes"])))
    elif totals["hosts_cleaned"] or totals["reduced_bytes"]:
        cards.append(_card("caches shrank by", human_bytes(totals["reduced_bytes"])))
    if report.get("change"):
        cards.append(_card("cache since last run", _signed(report["change"]["cache_bytes"])))
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        "<title>%s</title><style>%s</style></head><body>" % (escape(report["title"]), CSS),
        "<h1>%s</h1>" % escape(report["title"]),
        '<div class="meta">Generated %s &middot; %s</div>' % (
            escape(report["generated"]), escape("; ".join(_summary_lines(totals)))),
        '<div class="cards" id="totals">%s</div>' % "".join(cards),
        '<div class="hosts">%s</div>' % "".join(_host_section(host, scale, report["generated"]) for host in report["hosts"]),
        _table(report),
        "</body></html>\n",
    ])


RENDERERS = {"json": to_json, "csv": to_csv, "markdown": to_markdown, "html": to_html}
