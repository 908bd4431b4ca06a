"""Figure 7: the ``fleet_report`` action's own time at 500 and 5,000 hosts.

A = ``fleet_report.produce`` - everything the action does once it has each host's variables:
the report model, the history (read, compared, appended), the summary, and every format written
(JSON, CSV, Markdown, the HTML page from its Jinja2 template).  The hosts are synthetic
(``tests/unit/plugins/plugin_utils/hostvars.synthetic_fleet``: conda, pip, uv and mamba caches,
filesystems, cleans, environment facts, failed and unreachable hosts), since no machine here
starts 5,000 SSH hosts.  B = the floor any report of those hosts pays: their variables serialised
once to JSON and written the same way (``write_atomic``).  The target holds A itself.
"""

import json
import shutil
import sys

from bench.harness import alternate, from_pair, timed

from ansible_collections.pkgcache.fleet.plugins.action.fleet_report import ARGUMENT_SPEC, check_args, produce
from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import write_atomic
from unit.plugins.plugin_utils.hostvars import synthetic_fleet

# Seconds for the action's own work; 500 hosts get the 5,000-host budget pro rata.
TARGETS = {500: 0.2, 5000: 2.0}
# Runs already in the history when timing starts, as on a job that has been scheduled a while.
EARLIER_RUNS = 5


def run(workdir, scale):
    rows = []
    for count, target in sorted(TARGETS.items()):
        print("   %d hosts" % count, file=sys.stderr, flush=True)
        rows.append(_measure(workdir / ("report-%d" % count), count, target, scale))
    return rows


def _measure(workdir, count, target, scale):
    views, active = synthetic_fleet(count)
    args = dict((key, spec.get("default")) for key, spec in ARGUMENT_SPEC.items())
    error = check_args(args)
    if error:
        raise RuntimeError(error)
    dest = workdir / "report"
    shutil.rmtree(str(dest), ignore_errors=True)
    warnings = []
    for _run in range(EARLIER_RUNS):
        produce(views, active, args, str(dest), False, True, warnings.append)
    sizes = {}

    def report():
        sample, (built, files, _history) = timed(produce, views, active, args, str(dest), False, True, warnings.append)
        if len(built["hosts"]) != count or warnings:
            raise RuntimeError("report of %d hosts for %d, warnings %s" % (len(built["hosts"]), count, warnings))
        sizes.update((path.rsplit(".", 1)[1], (dest / path.rsplit("/", 1)[1]).stat().st_size) for path in files)
        return sample

    def serialise():
        sample, _done = timed(lambda: write_atomic(str(workdir / "views.json"), json.dumps(views, sort_keys=True),
                                                   keep_existing=False))
        return sample

    pair = alternate(report, serialise, scale)
    row = from_pair("report action: %d synthetic hosts vs their variables to JSON" % count, pair, target,
                    note="files %s; history %d+ runs" % (
                        ", ".join("%s %.1f MB" % (ext, size / 1e6) for ext, size in sorted(sizes.items())), EARLIER_RUNS))
    row["check"] = "a"
    return row
