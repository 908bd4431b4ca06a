# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render a fleet report (see ``_report.build``) as JSON, CSV, Markdown and one HTML page.

The HTML page comes from a Jinja2 template (the fleet_report role's, or the user's) and is
self-contained - inline CSS, script and SVG, no fonts, images or scripts from anywhere - so it
can be mailed, attached to a ticket or opened on an air-gapped admin host.  Autoescaping is on:
every value that came from a host is escaped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import datetime
import io
import json
import os

from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes
from ansible_collections.pkgcache.fleet.plugins.plugin_utils._report import STATUSES, gathered

EXTENSIONS = {"json": "json", "csv": "csv", "markdown": "md", "html": "html"}

CSV_COLUMNS = (
    "host", "status", "error", "conda_bytes", "conda_reclaimable_bytes", "pip_bytes",
    "pip_reclaimable_bytes", "cache_bytes", "reclaimable_bytes", "clean_outcome", "check_mode",
    "planned_bytes", "freed_bytes", "reduced_bytes", "before_bytes", "after_bytes", "removed",
    "backup_copied", "backup_bytes_copied",
    "self_clean_finished", "self_clean_exit_code", "self_clean_freed_bytes", "self_clean_removed",
    "previous_run", "cache_bytes_change", "reclaimable_bytes_change",
    "free_mount", "available_bytes", "available_percent", "near_full", "last_clean", "last_clean_how",
    "environments", "environments_unhealthy",
)

BAR_COLOURS = {"cache": "#4e79a7", "reclaimable": "#f28e2b", "growth": "#e15759", "free": "#59a14f"}
STATUS_COLOURS = {"ok": "#2e7d32", "incomplete": "#ef6c00", "no_conda": "#558b2f", "failed": "#c62828",
                  "unreachable": "#6a1b9a", "no_data": "#757575"}


def to_json(report):
    """Compact: the indenting encoder is pure Python, several times slower at thousands of hosts."""
    return json.dumps(report, sort_keys=True, separators=(",", ":")) + "\n"


def csv_row(host):
    """One flat row per host; empty cells where a part was not gathered or cleaning did not run."""
    conda = host["conda"] or {}
    pip = host["pip"] or {}
    clean = host["clean"] or {}
    backup = host["backup"] or {}
    self_clean = host.get("self_clean") or {}
    change = host.get("change") or {}
    free = host.get("free") or {}
    last = host.get("last_clean") or {}
    envs = host.get("environments") or {}
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
        "free_mount": free.get("mount", ""), "available_bytes": free.get("available_bytes", ""),
        "available_percent": free.get("available_percent", ""), "near_full": str(bool(host.get("near_full"))).lower(),
        "last_clean": last.get("time", ""), "last_clean_how": last.get("how", ""),
        "environments": envs.get("count", ""), "environments_unhealthy": envs.get("unhealthy", ""),
    }


def _other_tools(report):
    return [tool for tool in tool_columns(report) if tool not in ("conda", "pip")]


def to_csv(report):
    """One row per host; after the fixed columns, ``<tool>_bytes`` and ``<tool>_reclaimable_bytes``
    for each tool other than conda and pip that the fleet's caches name."""
    others = _other_tools(report)
    out = io.StringIO()
    # RFC 4180 line ends: the writer then quotes a field holding either \r or \n (a file name may).
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS + tuple(
        "%s_%s" % (tool, key) for tool in others for key in ("bytes", "reclaimable_bytes")), lineterminator="\r\n")
    writer.writeheader()
    for host in report["hosts"]:
        row = csv_row(host)
        for tool in others:
            part = (host.get("tools") or {}).get(tool) or {}
            row["%s_bytes" % tool] = part.get("disk_bytes", "")
            row["%s_reclaimable_bytes" % tool] = part.get("reclaimable_bytes", "")
        writer.writerow(row)
    return out.getvalue()


def _md(value):
    return " ".join(str(value).replace("|", "\\|").splitlines())


def _size(value):
    return "" if value is None or value == "" else human_bytes(value)


def _reclaimable(host):
    """Blank for a host whose caches were never seen (unreachable before facts): not "0 B"."""
    return human_bytes(host["reclaimable_bytes"]) if gathered(host) else ""


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
    """The one line a run prints: hosts by exact status, sizes in binary units, each tool apart."""
    totals = report["totals"]
    line = "%d host(s): %s; caches %s (%s), %s reclaimable" % (
        totals["hosts"], _by_status(totals) or "none", human_bytes(totals["cache_bytes"]),
        _per_tool(totals), human_bytes(totals["reclaimable_bytes"]))
    if totals["check_mode"] and totals["planned_bytes"]:
        line += "; a real run would free %s" % human_bytes(totals["planned_bytes"])
    elif totals["reduced_bytes"]:
        line += "; caches shrank by %s" % human_bytes(totals["reduced_bytes"])
    return line + ("; written to %s" % written_to if written_to else "")


def _per_tool(totals):
    """``conda 1.0 GiB, pip 2.0 MiB, uv ...``: each tool's caches on their own (pip never holds uv's)."""
    tools = totals.get("tools") or {}
    return ", ".join("%s %s" % (tool, human_bytes(tools[tool]["disk_bytes"]) if tool in tools else human_bytes(0))
                     for tool in _tool_order(tools))


def _summary_lines(totals):
    by_status = _by_status(totals)
    lines = [
        "Hosts: %d (%s)" % (totals["hosts"], by_status or "none"),
        "Cache on disk: %s (%s)" % (human_bytes(totals["cache_bytes"]), _per_tool(totals)),
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


# The HTML page's template: a file of the fleet_report role, which a user's template may extend.
TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "roles", "fleet_report", "templates")
DEFAULT_TEMPLATE = "fleet-report.html.j2"


def _blank_bytes(value):
    return "" if value is None else human_bytes(value)


def trend_chart(trend, width=640, height=150):
    """Polyline points of the fleet's cache and reclaimable bytes per run (the history's runs,
    this one last), scaled into *width* x *height*; ``None`` without a point."""
    if not trend:
        return None
    top = max([point[key] for point in trend for key in ("cache_bytes", "reclaimable_bytes")] + [1])
    step = float(width) / max(len(trend) - 1, 1)

    def points(key):
        return " ".join("%.1f,%.1f" % (index * step, height - height * float(point[key]) / top)
                        for index, point in enumerate(trend))
    return {
        "width": width, "height": height, "max_bytes": top, "runs": len(trend),
        "first": trend[0]["time"], "last": trend[-1]["time"],
        "series": [{"name": "cache", "colour": BAR_COLOURS["cache"], "points": points("cache_bytes"),
                    "last": trend[-1]["cache_bytes"]},
                   {"name": "reclaimable", "colour": BAR_COLOURS["reclaimable"], "points": points("reclaimable_bytes"),
                    "last": trend[-1]["reclaimable_bytes"]}],
    }


def tool_columns(report):
    """Tools with a column of their own, conda and pip first, then every other tool of the fleet."""
    return _tool_order(report["totals"].get("tools") or {})


def _tool_order(tools):
    return ["conda", "pip"] + sorted(tool for tool in tools if tool not in ("conda", "pip"))


def html_environment(template=None):
    """A Jinja2 environment for the page: autoescaping on (every host value is escaped), the
    report's filters, and the default template's directory after the user's own, so a user's
    template can ``{% extends "fleet-report.html.j2" %}`` and override its blocks."""
    import jinja2

    dirs = ([os.path.dirname(os.path.abspath(template))] if template else []) + [TEMPLATE_DIR]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(dirs), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(bytes=_blank_bytes, signed=_signed, status=_status, clean=_clean_cell,
                       backup=_backup_cell, change=_change_cell, ago=_ago, self_clean=_self_clean_cell)
    env.tests.update(gathered=gathered)
    return env


def host_details(host, generated):
    """``[label, text]`` pairs the page shows when a host's row is opened."""
    seen = gathered(host)
    pairs = [["error", host["error"]]] if host["error"] else []
    conda = host["conda"]
    pairs.append(["cache on disk", (human_bytes(host["cache_bytes"]) if seen else "not gathered") + (
        "; conda: %d installation(s), %d cache(s), %d environment(s), %d unused package(s)" % (
            conda["installations"], conda["caches"], conda["environments"], conda["unused_packages"]) if conda else "")])
    pairs += [[tool, "%d cache(s), %s, %s reclaimable" % (part["caches"], human_bytes(part["disk_bytes"]),
                                                          human_bytes(part["reclaimable_bytes"]))]
              for tool, part in sorted(host["tools"].items())]
    pairs += [["filesystem " + str(fs["mount"]), "%s of %s available (%s%%)" % (
        human_bytes(fs["available_bytes"]), human_bytes(fs["total_bytes"]), fs["available_percent"])]
        for fs in host["filesystems"]]
    pairs.append(["clean", _clean_cell(host["clean"])])
    if host["backup"]:
        pairs.append(["backup", _backup_cell(host["backup"])])
    if host.get("self_clean"):
        pairs.append(["last self-clean", _self_clean_cell(host["self_clean"], generated)])
    if host.get("change"):
        pairs.append(["since " + str(host["change"]["since"]), _change_cell(host["change"])])
    envs = host.get("environments")
    if envs:
        pairs.append(["environments", "%d, %d unhealthy, %s" % (envs["count"], envs["unhealthy"], human_bytes(envs["disk_bytes"]))])
    return pairs


def html_context(report):
    """What the template sees (documented in the fleet_report role's README)."""
    return {
        "report": report, "title": report["title"], "generated": report["generated"],
        "totals": report["totals"], "hosts": report["hosts"], "summary": report["summary"],
        "change": report.get("change"), "tools": tool_columns(report), "chart": trend_chart(report.get("trend")),
        "index": dict((host["host"], position) for position, host in enumerate(report["hosts"])),
        "summary_lines": _summary_lines(report["totals"]), "colours": BAR_COLOURS,
        "status_colours": STATUS_COLOURS, "statuses": STATUSES,
        "details": [host_details(host, report["generated"]) for host in report["hosts"]],
    }


def to_html(report, template=None):
    """The page, from *template* (a Jinja2 file on the controller) or the role's default."""
    env = html_environment(template)
    name = os.path.basename(template) if template else DEFAULT_TEMPLATE
    return env.get_template(name).render(html_context(report))


RENDERERS = {"json": to_json, "csv": to_csv, "markdown": to_markdown, "html": to_html}
