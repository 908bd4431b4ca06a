"""The SSH test fleet itself: reachable, privileged where asked, isolated, loopback-only, and
gone without a trace after teardown."""

import os
import shutil
import subprocess
import time
import uuid

import pytest

from testfleet import layouts, netcheck
from testfleet.fleet import Fleet, running


def leftovers(state_dir):
    """Live processes and mounts that still refer to *state_dir*, found independently of the
    fleet's own bookkeeping: any process chrooted below it or naming it on its command line
    (sshd, unshare, an ssh control master), any mount point below it."""
    state = str(state_dir)
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/{0}/stat".format(pid)) as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            root = os.readlink("/proc/{0}/root".format(pid))
            with open("/proc/{0}/cmdline".format(pid), "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(pid) != os.getpid() and (root.startswith(state) or state in cmdline):
            procs.append("{0}: {1}".format(pid, cmdline[:120]))
    with open("/proc/self/mountinfo") as handle:
        mounts = [line.split()[4] for line in handle if line.split()[4].startswith(state)]
    return procs, mounts


def wait_for_nothing_left(state_dir, patience=10.0):
    """ssh control masters exit once their server is gone; give them a moment."""
    deadline = time.monotonic() + patience
    while True:
        procs, mounts = leftovers(state_dir)
        if (not procs and not mounts) or time.monotonic() > deadline:
            return procs, mounts
        time.sleep(0.2)


def test_every_host_answers_ping_over_ssh(fleet):
    results = fleet.run_module("all", "ansible.builtin.ping")
    assert sorted(results) == fleet.hosts
    assert {host: r.get("ping") for host, r in results.items()} == {h: "pong" for h in fleet.hosts}


def test_become_gives_root_and_login_user_does_not(fleet):
    plain = fleet.run_module("all", "ansible.builtin.command", "id -u")
    root = fleet.run_module("all", "ansible.builtin.command", "id -u", become=True)
    assert {r["stdout"] for r in plain.values()} == {"1000"}
    assert {r["stdout"] for r in root.values()} == {"0"}


def test_each_host_has_its_own_name_and_sshd_as_pid_1(fleet):
    results = fleet.run_module("all", "ansible.builtin.command", "cat /proc/sys/kernel/hostname /proc/1/comm")
    assert {host: r["stdout"].split() for host, r in results.items()} == {
        host: [host, "sshd"] for host in fleet.hosts}


def test_layouts_reach_the_inventory(fleet):
    results = fleet.run_module("all", "ansible.builtin.debug", "var=fleet_layout")
    assert sorted(r["fleet_layout"] for r in results.values()) == sorted(layouts.CONDA_LAYOUTS)


def test_fixture_users_exist_inside_hosts(fleet):
    results = fleet.run_module("all", "ansible.builtin.getent", "database=passwd key=alice")
    for host, result in results.items():
        entry = result["ansible_facts"]["getent_passwd"]["alice"]
        assert entry[1:3] == ["1001", "1001"] and entry[4] == "/home/alice", host


def test_a_file_written_in_one_host_is_not_in_another(fleet):
    h1, h2 = fleet.hosts[:2]
    marker = "isolation-{0}".format(uuid.uuid4().hex)
    (fleet.root_of(h1) / "opt" / marker).write_text(h1)
    written = fleet.run_module(h2, "ansible.builtin.copy",
                               "dest=/opt/{0}.remote content={1}".format(marker, h2), become=True)
    assert written[h2]["changed"]

    seen = fleet.run_module("{0},{1}".format(h1, h2), "ansible.builtin.find",
                            "paths=/opt patterns={0}*".format(marker))
    assert [f["path"] for f in seen[h1]["files"]] == ["/opt/" + marker]
    assert [f["path"] for f in seen[h2]["files"]] == ["/opt/{0}.remote".format(marker)]
    assert (fleet.root_of(h2) / "opt" / (marker + ".remote")).read_text() == h2
    assert not (fleet.root_of(h1) / "opt" / (marker + ".remote")).exists()


def test_every_host_address_routes_via_loopback(fleet):
    for host in fleet.hosts:
        assert netcheck.route_is_loopback(netcheck.check_loopback_route(fleet.address_of(host)))


def test_an_address_in_use_is_refused_before_launch(fleet):
    """A second fleet must never wait on (and then talk to) another fleet's sshd."""
    with pytest.raises(netcheck.RouteError, match="already in use"):
        netcheck.ensure_unused(fleet.address_of(fleet.hosts[0]), 22)


@pytest.mark.parametrize("address", ["192.0.2.1", "8.8.8.8", "::1", "localhost"])
def test_route_check_refuses_anything_outside_loopback(address):
    with pytest.raises(netcheck.RouteError):
        netcheck.check_loopback_route(address)


def test_route_parser_rejects_a_real_non_loopback_route():
    """Ask the kernel about an off-box address (no packet is sent): whatever it answers — a
    route via some interface or 'unreachable' — is not a loopback route."""
    answer = subprocess.run(["ip", "-o", "route", "get", "192.0.2.1"], capture_output=True,
                            text=True, check=False).stdout
    assert not netcheck.route_is_loopback(answer)
    assert not netcheck.route_is_loopback("local 10.0.0.1 dev eth0 table local src 10.0.0.1")
    assert netcheck.route_is_loopback("local 127.100.0.7 dev lo table local src 127.0.0.1 uid 0")


def test_a_filesystem_mounted_into_a_running_host_is_seen_by_it(fleet_state_factory):
    """Tests give a host a small filesystem of its own for exact free-space checks; it must
    reach the host's namespace although that started before the mount existed."""
    state = fleet_state_factory("submount")
    with running(state, 1) as one:
        target = one.root_of("h1") / "srv" / "small"
        target.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "testfleet-small", str(target)],
                       check=True)
        (target / "seen").write_text("from the controller")
        result = one.run_module("h1", "ansible.builtin.command", "stat -f -c '%T %b %S' /srv/small/seen")
        fstype, blocks, block_size = result["h1"]["stdout"].split()
        assert fstype == "tmpfs" and int(blocks) * int(block_size) == 4 * 1024 * 1024
    assert wait_for_nothing_left(state) == ([], [])


def namespace_mounts(pid):
    """Every mount of *pid*'s mount namespace (its own mountinfo shows only what lies under
    its chroot)."""
    return subprocess.run(["nsenter", "--mount=/proc/{0}/ns/mnt".format(pid), "cat",
                           "/proc/self/mountinfo"], capture_output=True, text=True, check=True).stdout


def test_a_host_holds_no_copy_of_other_hosts_trees(fleet_state_factory):
    """A new mount namespace starts as a copy of the controller's, other hosts' trees included;
    such a copy would keep a tree mounted (its directory busy) after its owner unmounted it."""
    first_state, second_state = fleet_state_factory("first"), fleet_state_factory("second")
    first = Fleet(first_state).up(2)
    try:
        with running(second_state, 1) as second:
            inside_second = namespace_mounts(second.load()["hosts"]["h1"]["pid1"]["pid"])
            assert str(second.root_of("h1")) in inside_second, "the check must see the own tree"
            assert str(first_state) not in inside_second
            inside_first = namespace_mounts(first.load()["hosts"]["h1"]["pid1"]["pid"])
            assert str(first.root_of("h2")) not in inside_first
            first.down()
            shutil.rmtree(str(first_state / "hosts"))
    finally:
        first.down()
    assert wait_for_nothing_left(first_state) == ([], [])


def test_teardown_leaves_no_process_mount_or_namespace(fleet, fleet_state_factory):
    state = fleet_state_factory("teardown")
    with running(state, 2, [layouts.BARE, "multi_user"]) as small:
        assert small.run_module("all", "ansible.builtin.ping", become=True)
        theirs = {fleet.address_of(h) for h in fleet.hosts}
        assert not theirs & {small.address_of(h) for h in small.hosts}, "fleets share addresses"
        procs, mounts = leftovers(state)
        assert procs and len(mounts) == 2, "the check must see a running fleet"
        namespaces = {os.readlink("/proc/{0}/ns/mnt".format(p["pid"]))
                      for p in (small.load()["hosts"][h]["pid1"] for h in small.hosts)}
    assert wait_for_nothing_left(state) == ([], [])
    assert not any(os.readlink("/proc/{0}/ns/mnt".format(pid)) in namespaces
                   for pid in filter(str.isdigit, os.listdir("/proc"))
                   if os.path.exists("/proc/{0}/ns/mnt".format(pid)))


def test_a_failure_halfway_through_up_cleans_up(fleet_state_factory, monkeypatch):
    """Hosts are mounted and running when the last step of up fails: nothing may survive."""
    state = fleet_state_factory("halfway")

    def broken_inventory(self, state):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(Fleet, "_write_inventory", broken_inventory)
    with pytest.raises(OSError, match="injected"):
        Fleet(state).up(3)
    assert wait_for_nothing_left(state) == ([], [])


def test_down_is_safe_on_a_fleet_that_never_came_up(tmp_path):
    Fleet(tmp_path / "never").down()
    assert leftovers(tmp_path) == ([], [])


def test_fifty_hosts_come_up_answer_and_go_down(fleet_state_factory):
    state = fleet_state_factory("fifty")
    started = time.monotonic()
    with running(state, 50) as big:
        up = time.monotonic() - started
        results = big.run_module("all", "ansible.builtin.ping", forks=20)
        pinged = time.monotonic() - started - up
        assert len(results) == 50 and all(r.get("ping") == "pong" for r in results.values())
        stopping = time.monotonic()
    down = time.monotonic() - stopping
    assert wait_for_nothing_left(state) == ([], [])
    print("50 hosts: up {0:.1f} s, ping {1:.1f} s, down {2:.1f} s".format(up, pinged, down))
