"""Figure 6: the ``report`` playbook over a fleet against ``ansible -m ansible.builtin.ping``.

A fleet of N namespace SSH hosts (``testfleet``; every layout it knows, round-robin, so the
report meets bare hosts and several conda layouts) comes up for each size and always goes down
again.  A = ``ansible-playbook playbooks/report.yml`` (facts on every host, then the fleet report
on the controller); B = ``ansible all -m ansible.builtin.ping``; both with the same forks and
inventory, alternated, and both must succeed.
"""

from pathlib import Path

from testfleet import layouts
from testfleet.fleet import running

from bench.harness import alternate, from_pair, timed

REPORT = Path(__file__).resolve().parents[1] / "playbooks" / "report.yml"
FORKS = 20
TARGET = 2.0


def _succeeded(done, what):
    if done.returncode != 0:
        raise RuntimeError("%s failed (rc=%d):\n%s\n%s" % (what, done.returncode, done.stdout[-3000:], done.stderr[-2000:]))


def run(workdir, scale):
    rows = []
    for count in scale.hosts:
        state = Path(workdir) / ("fleet-%d" % count)
        report_dir = Path(workdir) / ("report-%d" % count)
        with running(str(state), count, layouts.NAMES, seed=scale.seed) as fleet:

            def report(fleet=fleet, report_dir=report_dir):
                sample, done = timed(fleet.playbook, str(REPORT), "-f", str(FORKS),
                                      "-e", "pkgcache_report_dir=%s" % report_dir)
                _succeeded(done, "report playbook")
                return sample

            def ping(fleet=fleet):
                sample, done = timed(fleet.ansible, "all", "-m", "ansible.builtin.ping", "-f", str(FORKS))
                _succeeded(done, "ping")
                return sample

            pair = alternate(report, ping, scale)
        rows.append(from_pair("fleet: report playbook vs ping, %d hosts" % count, pair, TARGET,
                              note="forks %d; layouts %s round-robin" % (FORKS, ",".join(layouts.NAMES))))
    return rows
