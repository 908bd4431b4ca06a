"""``make demo``: a throw-away 3-host fleet, the site playbook against it, then teardown.

Three different layouts so the report shows the collection on unlike hosts; the fleet lives in a
temporary directory and goes down whatever the playbook does.  The exit code is the playbook's.
"""

import tempfile
from pathlib import Path

from testfleet.fleet import running

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "playbooks" / "site.yml"
REPORT = REPO / "report"
DEMO_LAYOUTS = ("single_root", "multi_user", "softlinked_env")


def run(playbook, report):
    with tempfile.TemporaryDirectory(prefix="testfleet-demo-") as state:
        with running(state, len(DEMO_LAYOUTS), DEMO_LAYOUTS) as fleet:
            print("demo fleet up: {0}".format(", ".join(
                "{name}={layout}".format(**host) for host in fleet.describe())), flush=True)
            result = fleet.playbook(str(playbook), "-e", "pkgcache_report_dir={0}".format(report),
                                    capture_output=False)
    written = "report in {0}".format(report) if Path(report).is_dir() else "no report written"
    print("playbook exit code {0}; {1}".format(result.returncode, written))
    return result.returncode
