# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hosts that clean themselves (issue 19): the cache_schedule role on SSH test hosts.

The namespace hosts run sshd as PID 1, not systemd, so the timer is never fired here.  What is
tested instead: ``systemd-analyze verify`` (the controller's systemd) on the generated units, the
timer's calendar expression through ``systemd-analyze calendar``, then the service's ``ExecStart``
run as systemd would run it (as root, over SSH); for cron, the entry's format, then its command
line run through ``/bin/sh`` as cron would.  The run must remove exactly what a check-mode
``conda_clean`` (and ``pip_cache_clean``) with the same policy plans, its record must reach the
next fleet report, and ``cache_schedule_state: absent`` must leave no file behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
import yaml

from test_playbooks import VOLATILE, host_state, run_job
from testfleet.fleet import running

REPO = Path(__file__).resolve().parents[2]
LINK = REPO / ".build" / "link"
SYSTEMD, CRON = "h1", "h2"
UNIT_DIR = "etc/systemd/system"
RECORD = "var/lib/pkgcache/last-run.json"
LIB = "usr/local/lib/pkgcache/ansible_collections/pkgcache/fleet/plugins/module_utils"
# Everything the role may install; after state=absent none of it may be left.
INSTALLED = ("usr/local/bin/pkgcache", "usr/local/lib/pkgcache", "etc/pkgcache", "var/lib/pkgcache",
             UNIT_DIR + "/pkgcache-clean.service", UNIT_DIR + "/pkgcache-clean.timer",
             UNIT_DIR + "/timers.target.wants/pkgcache-clean.timer", "etc/cron.d/pkgcache",
             "etc/logrotate.d/pkgcache", "var/log/pkgcache.log")
# The role's policy in these tests: its defaults, plus a pip age rule so the pip section has a
# plan of its own to compare.
POLICY = {"cache_schedule_pip_min_age": "0", "cache_schedule_metrics_dir": "/var/lib/node-exporter"}


def env():
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(LINK))


def apply_role(fleet, work, *options, **variables):
    """``ansible-playbook pkgcache.fleet.schedule`` on every host; h1 is told to use systemd (a
    host variable), h2 picks for itself (no systemd runs there, so cron).  Returns the process."""
    work.mkdir(parents=True, exist_ok=True)
    host_vars = work / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / "h1.yml").write_text("cache_schedule_scheduler: systemd\n")
    # The fleet's own inventory gives the connection; host_vars beside this one add h1's choice.
    inventory = work / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {SYSTEMD: None, CRON: None}}}))
    return fleet.playbook("-i", str(inventory), "pkgcache.fleet.schedule", "-e", json.dumps(dict(POLICY, **variables)),
                          *options, env=env())


def module(fleet, host, name, args, check=False):
    """One module's result on one host, as root (``--check`` when asked)."""
    with tempfile.TemporaryDirectory(prefix="schedule-tree-") as tree:
        variables = dict(env(), ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
                         ANSIBLE_CALLBACK_TREE_DIR=tree)
        done = fleet.ansible(host, "-m", name, "-a", json.dumps(args) if isinstance(args, dict) else args,
                             "--become", *(["--check"] if check else []), env=variables)
        path = Path(tree) / host
        assert path.exists(), done.stdout + done.stderr
        return json.loads(path.read_text())


def unit(root, name):
    """{key: value} of a unit file's settings (one value per key is all these units have)."""
    found = {}
    for line in (root / UNIT_DIR / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found[key] = value
    return found


CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def cron_entries(text):
    """``[(time fields, user, command)]`` of a /etc/cron.d file; AssertionError on a line cron
    would reject (a bad field, a value out of range, a bare % that cron turns into a newline)."""
    entries = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 6)
        assert len(fields) == 7, line
        for field, (low, high) in zip(fields[:5], CRON_RANGES):
            assert CRON_FIELD.match(field), (field, line)
            for number in re.findall(r"\d+", field.split("/")[0]):
                assert low <= int(number) <= high, (field, line)
        assert "%" not in fields[6], "cron turns % into a newline: %s" % line
        entries.append((fields[:5], fields[5], fields[6]))
    return entries


@pytest.fixture(scope="module")
def hosts(fleet_state_factory, tmp_path_factory):
    """Two hosts with the role applied: h1 with a systemd timer, h2 with a cron entry.  Holds the
    hosts' file lists from before the role ran, for the absent test."""
    with running(fleet_state_factory("schedule"), 2, ("multi_user", "softlinked_env"), seed=7) as fleet:
        for name in fleet.hosts:
            for partial in fleet.root_of(name).glob("**/pkgs/*.partial"):
                os.utime(partial, (1, 1))  # stale downloads: do not let them mark caches busy
        # h2 has a cron daemon's directory (as `apt install cron` leaves it); the role then picks cron.
        (fleet.root_of(CRON) / "etc/cron.d").mkdir(exist_ok=True)
        for name in fleet.hosts:  # node_exporter's textfile directory, as its package leaves it
            (fleet.root_of(name) / "var/lib/node-exporter").mkdir(parents=True, exist_ok=True)
        before = dict((name, host_state(fleet, name)) for name in fleet.hosts)
        # A check run on hosts that have nothing yet says what it would do and changes nothing.
        check = apply_role(fleet, tmp_path_factory.mktemp("check"), "--check")
        assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-2000:]
        assert dict((name, host_state(fleet, name)) for name in fleet.hosts) == before
        done = apply_role(fleet, tmp_path_factory.mktemp("role"))
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        yield fleet, before, done


def test_the_role_installs_the_collections_own_code_and_a_checked_policy(hosts, tmp_path):
    fleet, _before, _done = hosts
    for name in fleet.hosts:
        root = fleet.root_of(name)
        lib = root / LIB
        sources = sorted((REPO / "plugins" / "module_utils").glob("*.py"))
        expected = sorted(set(["__init__.py"] + [p.name for p in sources]))
        assert sorted(p.name for p in lib.glob("*.py")) == expected
        assert all((lib / p.name).read_bytes() == p.read_bytes() for p in sources), "the collection's files, unchanged"
        wrapper = root / "usr/local/bin/pkgcache"
        assert os.access(wrapper, os.X_OK)
        policy = json.loads((root / "etc/pkgcache/policy.json").read_text())
        assert set(policy) == {"clean", "clean-pip"}
        assert policy["clean"]["targets"] == ["tarballs", "packages", "index_cache", "logfiles", "trash", "partial"]
        assert policy["clean"]["busy_age"] == "1h" and policy["clean"]["when_free_below"] is None
        assert policy["clean-pip"] == {"purge": False, "patterns": [], "min_age": "0", "uv": None,
                                       "environment": {}}
        checked = module(fleet, name, "ansible.builtin.command", "/usr/local/bin/pkgcache run --validate "
                         "--policy /etc/pkgcache/policy.json")
        assert checked["stdout"] == "policy ok: clean, clean-pip", checked
    again = apply_role(fleet, tmp_path)
    assert again.returncode == 0 and re.findall(r"changed=(\d+)", again.stdout) == ["0", "0"], again.stdout[-3000:]


def test_a_misspelt_variable_or_a_bad_policy_value_stops_the_role(hosts, tmp_path):
    fleet, _before, _done = hosts
    done = apply_role(fleet, tmp_path / "typo", cache_schedule_min_aeg="7d")
    assert done.returncode != 0 and "Unknown variable(s) cache_schedule_min_aeg" in done.stdout
    policy = (fleet.root_of(SYSTEMD) / "etc/pkgcache/policy.json").read_text()
    done = apply_role(fleet, tmp_path / "value", cache_schedule_busy_age="soon")
    assert done.returncode != 0 and "busy_age" in done.stdout, done.stdout[-3000:]
    assert (fleet.root_of(SYSTEMD) / "etc/pkgcache/policy.json").read_text() == policy, "the checked policy stays"


def test_the_systemd_units_verify_and_say_when_and_how_gently_to_run(hosts, tmp_path):
    fleet, _before, _done = hosts
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (tests/tools/apt-deps.sh installs systemd)")
    root = fleet.root_of(SYSTEMD)
    service, timer = unit(root, "pkgcache-clean.service"), unit(root, "pkgcache-clean.timer")
    assert service["ExecStart"] == ("/usr/local/bin/pkgcache run --policy /etc/pkgcache/policy.json "
                                    "--record /var/lib/pkgcache/last-run.json --metrics-dir /var/lib/node-exporter")
    assert (service["Type"], service["Nice"], service["IOSchedulingClass"]) == ("oneshot", "19", "idle")
    assert "StandardOutput" not in service, "the journal is the log under systemd"
    assert (timer["OnCalendar"], timer["RandomizedDelaySec"], timer["Persistent"]) == ("monthly", "6h", "true")
    assert timer["WantedBy"] == "timers.target"
    wants = root / UNIT_DIR / "timers.target.wants/pkgcache-clean.timer"
    assert os.readlink(wants) == "../pkgcache-clean.timer" and wants.resolve() == root / UNIT_DIR / "pkgcache-clean.timer"
    assert not (root / "etc/cron.d/pkgcache").exists() and not (root / "etc/logrotate.d/pkgcache").exists()
    # The controller's systemd checks the units; the command they start is the host's own, so the
    # copies point at it through the host's root as seen from here (nothing else is changed).
    for name in ("pkgcache-clean.service", "pkgcache-clean.timer"):
        text = (root / UNIT_DIR / name).read_text()
        (tmp_path / name).write_text(text.replace("ExecStart=/", "ExecStart=%s/" % root))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "pkgcache-clean.timer"),
                           str(tmp_path / "pkgcache-clean.service")], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, ""), done.stdout + done.stderr
    calendar = subprocess.run(["systemd-analyze", "calendar", timer["OnCalendar"]], capture_output=True, text=True,
                              check=False)
    assert calendar.returncode == 0 and "*-*-01 00:00:00" in calendar.stdout


def test_the_cron_entry_is_valid_and_logs_to_a_rotated_file(hosts):
    fleet, _before, _done = hosts
    root = fleet.root_of(CRON)
    [(when, user, command)] = cron_entries((root / "etc/cron.d/pkgcache").read_text())
    assert when[2:] == ["1", "*", "*"] and 2 <= int(when[1]) <= 5, "monthly, at night"
    assert user == "root"
    assert command == ("nice -n 19 ionice -c 3 /usr/local/bin/pkgcache run --policy /etc/pkgcache/policy.json "
                       "--record /var/lib/pkgcache/last-run.json --metrics-dir /var/lib/node-exporter "
                       ">>/var/log/pkgcache.log 2>&1")
    rotate = (root / "etc/logrotate.d/pkgcache").read_text()
    assert "/var/log/pkgcache.log {" in rotate and "rotate 12" in rotate and "monthly" in rotate
    assert not (root / UNIT_DIR / "pkgcache-clean.timer").exists()
    assert cron_entries("0 3 1 * * root true")
    with pytest.raises(AssertionError):
        cron_entries("0 25 1 * * root true")  # the validator can fail


def plan_of(fleet, host):
    """What conda_clean and pip_cache_clean in check mode plan under the role's policy."""
    policy = json.loads((fleet.root_of(host) / "etc/pkgcache/policy.json").read_text())
    conda = module(fleet, host, "pkgcache.fleet.conda_clean",
                   dict((k, v) for k, v in policy["clean"].items() if v is not None), check=True)
    pip = module(fleet, host, "pkgcache.fleet.pip_cache_clean",
                 dict((k, v) for k, v in policy["clean-pip"].items() if v is not None), check=True)
    assert "plan" in conda and "caches" in pip, (conda, pip)
    return (sorted(i["path"] for p in conda["plan"] for i in p["remove"]),
            sorted(i["path"] for c in pip["caches"] for i in c["remove"]))


def test_a_scheduled_run_removes_exactly_what_conda_clean_plans(hosts):
    fleet, _before, _done = hosts
    root = fleet.root_of(SYSTEMD)
    conda_plan, pip_plan = plan_of(fleet, SYSTEMD)
    assert conda_plan and pip_plan
    service = unit(root, "pkgcache-clean.service")
    done = module(fleet, SYSTEMD, "ansible.builtin.command", service["ExecStart"])
    assert done.get("rc") == 0, done
    assert done["stdout"].splitlines()[1].startswith("clean: removed %d path(s)" % len(conda_plan))
    record = json.loads((root / RECORD).read_text())
    assert (record["exit_code"], record["check_mode"]) == (0, False)
    assert sorted(record["runs"]["clean"]["removed"]) == conda_plan
    assert sorted(record["runs"]["clean-pip"]["removed"]) == pip_plan
    assert not [p for p in conda_plan if os.path.lexists(root / p.lstrip("/"))]
    families = text_string_to_metric_families((root / "var/lib/node-exporter/pkgcache.prom").read_text())
    samples = dict((s.name, s.value) for f in families for s in f.samples if s.labels.get("tool") == "conda"
                   and s.name.startswith("pkgcache_last_clean"))
    assert samples["pkgcache_last_clean_timestamp_seconds"] > 0, samples
    assert samples["pkgcache_last_clean_removed_bytes"] > 0, samples


def test_the_cron_command_runs_under_sh_and_logs_to_its_file(hosts):
    fleet, _before, _done = hosts
    root = fleet.root_of(CRON)
    conda_plan, _pip_plan = plan_of(fleet, CRON)
    [(_when, _user, command)] = cron_entries((root / "etc/cron.d/pkgcache").read_text())
    done = module(fleet, CRON, "ansible.builtin.shell", command)
    assert done.get("rc") == 0, done
    log = (root / "var/log/pkgcache.log").read_text()
    assert log.startswith("pkgcache run ") and "clean: removed %d path(s)" % len(conda_plan) in log
    assert sorted(json.loads((root / RECORD).read_text())["runs"]["clean"]["removed"]) == conda_plan


def test_the_next_fleet_report_shows_when_each_host_last_cleaned_itself(hosts, tmp_path):
    fleet, _before, _done = hosts
    job = run_job(fleet, tmp_path, "report")
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    for name in fleet.hosts:
        record = json.loads((fleet.root_of(name) / RECORD).read_text())
        shown = job.host(name)["self_clean"]
        assert shown["finished"] == record["finished"] and shown["exit_code"] == 0
        assert shown["removed"] == sum(len(part["removed"]) for part in record["runs"].values()) > 0
        assert shown["freed_bytes"] == sum(part["freed_bytes"] for part in record["runs"].values())
    assert job.report["totals"]["hosts_self_cleaning"] == 2
    markdown = (tmp_path / "report" / "fleet-report.md").read_text()
    assert "| host | last self-clean |" in markdown
    assert re.search(r"\| h1 \| (just now|\d+ minutes? ago) \(.*\): freed .*, \d+ path\(s\) removed \|", markdown), markdown


def test_state_absent_leaves_nothing_behind(hosts, tmp_path):
    fleet, before, _done = hosts
    done = apply_role(fleet, tmp_path, cache_schedule_state="absent")
    assert done.returncode == 0, done.stdout[-3000:]
    for name in fleet.hosts:
        root = fleet.root_of(name)
        assert [p for p in INSTALLED if os.path.lexists(root / p)] == [], name
        after = host_state(fleet, name)
        # Cleaning removed cache files; nothing may have been added.
        assert sorted(set(after) - set(before[name])) == [], name
        upper = fleet.host_dir(name) / "upper"
        assert [str(p) for p in upper.rglob("*pkgcache*")
                if not VOLATILE & set(p.relative_to(upper).parts)] == [], name
    again = apply_role(fleet, tmp_path / "again", cache_schedule_state="absent")
    assert again.returncode == 0 and re.findall(r"changed=(\d+)", again.stdout) == ["0", "0"], again.stdout[-3000:]
