"""Figure 5: peak resident memory of the facts logic on the largest tree (~1M names in full mode).

Measured in a fresh interpreter (``python -m bench.memory FIXTURE_DIR``) so that nothing the harness
did before counts: it forks an idle child into the fixture's chroot (the baseline: interpreter,
imports, fork), then a child that runs ``gather``.  ``gather`` forks walker processes that live
alongside it, so the figure is the gather child's own peak plus every walker at the largest
walker's peak (an upper bound: walkers share their parent's pages until they write), minus the
baseline; the limit is on that, and the baseline is reported next to it.
"""

import json
import resource
import subprocess
import sys

from ansible_collections.pkgcache.fleet.plugins.module_utils import _diskusage

from bench import fixtures
from bench.facts import gather_in
from bench.harness import row
from condafab.chroot import in_host

LIMIT_MB = 150


def _idle():
    return None


def _children_peak_mb():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _measure(home):
    """In the fresh interpreter: baseline child, then the gather child (max RSS only grows)."""
    fixture = fixtures.load(home)
    in_host(fixture.fsroot, _idle)
    baseline = _children_peak_mb()
    result = gather_in(fixture)
    walkers = min(_diskusage.MAX_WORKERS, _diskusage.usable_cpus()) - 1
    peak = (result["maxrss_kb"] + walkers * result["walker_maxrss_kb"]) / 1024.0
    return {"baseline_mb": baseline, "peak_mb": peak, "walkers": walkers,
            "walker_mb": result["walker_maxrss_kb"] / 1024.0, "seconds": result["sample"]["wall"]}


def run(workdir, scale):
    fixture = fixtures.get(workdir, scale.rss_packages, scale)
    out = subprocess.run([sys.executable, "-m", "bench.memory", str(fixture.home)], check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    net = result["peak_mb"] - result["baseline_mb"]
    size = "%d packages, %d files" % (fixture.packages, fixture.files)
    note = ("A = peak RSS of the gather child plus %d walker(s) at %.1f MB each, minus B = an idle child's "
            "(%.1f MB peak in all); %s; gather took %.2f s" % (
                result["walkers"], result["walker_mb"], result["peak_mb"], size, result["seconds"]))
    if scale.quick:
        note += "; quick mode: a smaller tree than the ~1M files the limit is set for"
    return [row("facts: peak RSS, %s" % size, net, result["baseline_mb"], LIMIT_MB, unit="MB", check="a",
                note=note)]


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1])))
