"""Figure 6: the ``report`` playbook over a fleet against ``ansible -m ansible.builtin.ping``.

A fleet of N namespace SSH hosts (``testfleet``; every layout it knows, round-robin, so the
report meets bare hosts and several conda layouts) comes up for each size and always goes down
again.  A = ``ansible-playbook playbooks/report.yml`` (facts on every host, then the fleet report
on the controller); B = ``ansible all -m ansible.builtin.ping``; both with the same forks and
inventory, alternated, and both must succeed.
"""

import sys
from pathlib import Path

from testfleet import layouts
from testfleet.fleet import running

from bench.harness import alternate, failed, from_pair, timed

REPORT = Path(__file__).resolve().parents[1] / "playbooks" / "report.yml"
FORKS = 20
TARGET = 2.0


def _succeeded(done, what):
    if done.returncode != 0:
        raise RuntimeError("%s failed (rc=%d):\n%s\n%s" % (what, done.returncode, done.stdout[-3000:], done.stderr[-2000:]))


def run(workdir, scale):
    rows = []
    for count in scale.hosts:
        figure = "fleet: report playbook vs ping, %d hosts" % count
        print("   %d hosts" % count, file=sys.stderr, flush=True)
        try:
            rows.append(from_pair(figure, _measure(Path(workdir), count, scale), TARGET,
                                  note="forks %d; layouts %s round-robin" % (FORKS, ",".join(layouts.NAMES))))
        except (RuntimeError, OSError) as exc:  # a size that fails must not lose the others
            rows.append(failed(figure, exc))
    return rows


def _measure(workdir, count, scale):
    """Bring ``count`` hosts up, alternate report and ping, tear the hosts down whatever happens."""
    state = workdir / ("fleet-%d" % count)
    report_dir = workdir / ("report-%d" % count)
    with running(str(state), count, layouts.NAMES, seed=scale.seed) as fleet:

        def report():
            sample, done = timed(fleet.playbook, str(REPORT), "-f", str(FORKS),
                                 "-e", "pkgcache_report_dir=%s" % report_dir)
            _succeeded(done, "report playbook")
            return sample

        def ping():
            sample, done = timed(fleet.ansible, "all", "-m", "ansible.builtin.ping", "-f", str(FORKS))
            _succeeded(done, "ping")
            return sample

        return alternate(report, ping, scale)
