"""Figure 6: the ``report`` playbook over a fleet against ``ansible -m ansible.builtin.ping``.

A fleet of N namespace SSH hosts (``testfleet``; every layout it knows, round-robin, so the
report meets bare hosts and several conda layouts) comes up for each size and always goes down
again; how long it took to come up is in the row's note.  A = ``ansible-playbook
playbooks/report.yml`` (facts on every host, then the fleet report on the controller); B =
``ansible all -m ansible.builtin.ping``; both with the same settings (:data:`SETTINGS`, the ones
docs/awx.md recommends at scale) and inventory, alternated, and both must succeed.
"""

import dataclasses
import os
import sys
import time
from pathlib import Path

from testfleet import layouts
from testfleet.fleet import running

from bench.harness import alternate, failed, from_pair, timed

REPORT = Path(__file__).resolve().parents[1] / "playbooks" / "report.yml"
FORKS = 50
# Both sides, so that they differ only in the work: pipelining (no module file copied over per
# task), the default linear strategy, no fact gathering (the report play has it off, ad hoc
# ping never gathers).
SETTINGS = {"ANSIBLE_PIPELINING": "True", "ANSIBLE_STRATEGY": "linear", "ANSIBLE_GATHERING": "explicit"}
# From this size on the hosts' work outweighs the fixed cost of a playbook (its start, the report
# play): the tighter target.  A pair of runs takes minutes there and the machine is shared: fewer
# repetitions.
LARGE = 100
TARGET, LARGE_TARGET = 2.0, 1.5
LARGE_RUNS = 3


def _succeeded(done, what):
    if done.returncode != 0:
        raise RuntimeError("%s failed (rc=%d):\n%s\n%s" % (
            what, done.returncode, done.stdout[-3000:], done.stderr[-2000:]))


def run(workdir, scale):
    rows = []
    for count in scale.hosts:
        figure = "fleet: report playbook vs ping, %d hosts" % count
        print("   %d hosts" % count, file=sys.stderr, flush=True)
        large = count >= LARGE
        runs = dataclasses.replace(scale, runs=min(scale.runs, LARGE_RUNS)) if large else scale
        try:
            pair, up_seconds = _measure(Path(workdir), count, runs)
            settings = ", ".join("%s=%s" % kv for kv in SETTINGS.items())
            note = "fleet up in %.0f s; forks %d; %s; median of %d; layouts %s round-robin" % (
                up_seconds, FORKS, settings, runs.runs, ",".join(layouts.NAMES))
            rows.append(from_pair(figure, pair, LARGE_TARGET if large else TARGET, note=note))
        except (RuntimeError, OSError) as exc:  # a size that fails must not lose the others
            rows.append(failed(figure, exc))
    return rows


def _measure(workdir, count, scale):
    """Bring ``count`` hosts up, alternate report and ping, tear the hosts down whatever happens.
    Returns the pair and the seconds the fleet took to come up."""
    state = workdir / ("fleet-%d" % count)
    report_dir = workdir / ("report-%d" % count)
    env = dict(os.environ, **SETTINGS)
    started = time.perf_counter()
    with running(str(state), count, layouts.NAMES, seed=scale.seed) as fleet:
        up_seconds = time.perf_counter() - started

        def report():
            sample, done = timed(fleet.playbook, str(REPORT), "-f", str(FORKS),
                                 "-e", "pkgcache_report_dir=%s" % report_dir, env=env)
            _succeeded(done, "report playbook")
            return sample

        def ping():
            sample, done = timed(fleet.ansible, "all", "-m", "ansible.builtin.ping", "-f", str(FORKS), env=env)
            _succeeded(done, "ping")
            return sample

        return alternate(report, ping, scale), up_seconds
