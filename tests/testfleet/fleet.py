"""A fleet of namespace hosts under one state directory, and its Ansible inventory.

Hosts are recorded in ``fleet.json`` before their trees are mounted and their processes as soon
as they start; ``down`` stops what is recorded and then sweeps every mount and process still
found under the state directory, so it cleans up after a crash at any point of ``up``, from any
process, any number of times.  Host ``hN`` listens on
``127.100.X.N``; the subnet X is claimed per fleet so that fleets started by concurrent test runs
on one machine never collide.
"""

import atexit
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

from testfleet import hosts as hostlib
from testfleet import layouts, netcheck, rootfs
from testfleet.accounts import authorize_key

MAX_HOSTS = 254
ACCEPT_TIMEOUT = 60.0
# Plus this per host for the sshds to accept: they all start at once, and on two busy cores 200 of
# them took longer than a minute (twice, at a load average of 30 from other work).
ACCEPT_PER_HOST = 0.5


def _claims_dir():
    return rootfs.cache_dir() / "nets"


def claimed_state_dirs():
    """State directories of the fleets that hold a subnet on this machine, by subnet."""
    claims = _claims_dir()
    if not claims.is_dir():
        return {}
    return {int(claim.name): Path(os.readlink(str(claim)))
            for claim in claims.iterdir() if claim.name.isdigit() and claim.is_symlink()}


def fleet_mounts():
    """Mount points of every fleet's host trees on this machine (ours included)."""
    return [point for state_dir in claimed_state_dirs().values()
            for point in Fleet(state_dir).mounts()]


class Fleet(object):
    """The fleet whose state lives in *state_dir* (created on ``up``)."""

    def __init__(self, state_dir):
        self.state_dir = Path(state_dir).resolve()
        self.state_file = self.state_dir / "fleet.json"
        self.inventory = self.state_dir / "inventory.ini"
        self.private_key = self.state_dir / "id_ed25519"
        self.known_hosts = self.state_dir / "known_hosts"
        self._popens = []

    # -- state ---------------------------------------------------------------------------------
    def load(self):
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"net": None, "hosts": {}}

    def _save(self, state):
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.rename(self.state_file)

    @property
    def hosts(self):
        return sorted(self.load()["hosts"], key=lambda name: int(name[1:]))

    @property
    def _prefix(self):
        """Every mount and chroot of this fleet's hosts lies below this path."""
        return str(self.state_dir / "hosts") + os.sep

    def host_dir(self, name):
        return self.state_dir / "hosts" / name

    def root_of(self, name):
        """The host's filesystem as seen from the controller (writes land in the host)."""
        return self.host_dir(name) / "root"

    def manifest_of(self, name):
        """The fixture builder's manifest (JSON) of what the host's layout put there."""
        return self.host_dir(name) / "manifest.json"

    def address_of(self, name):
        return self.load()["hosts"][name]["address"]

    # -- subnet claims -------------------------------------------------------------------------
    def _claim_net(self):
        """Claim the first free 127.100.X.0/24 with a symlink to our state dir.  A claim whose
        fleet is abandoned (its ``up`` process and all its hosts gone) is taken over; the lock
        keeps two fleets from taking over the same one."""
        claims = _claims_dir()
        claims.mkdir(parents=True, exist_ok=True)
        with open(str(claims / ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for net in range(256):
                claim = claims / str(net)
                if claim.is_symlink():
                    owner = Path(os.readlink(str(claim)))
                    if owner != self.state_dir and not Fleet(owner).abandoned():
                        continue
                    claim.unlink()
                os.symlink(str(self.state_dir), str(claim))
                return net
        raise RuntimeError("all 256 test subnets 127.100.X.0/24 are claimed in {0}".format(claims))

    def abandoned(self):
        """Nothing of this fleet is alive: not the process that ran ``up``, not one host."""
        state = self.load()
        owner = hostlib.Proc.from_dict(state.get("owner"))
        return not (owner is not None and owner.alive()) and \
            not any(self._alive(host) for host in state["hosts"].values())

    def _release_net(self, net):
        claim = _claims_dir() / str(net)
        with contextlib.suppress(OSError):
            if Path(os.readlink(str(claim))) == self.state_dir:
                claim.unlink()

    # -- up ------------------------------------------------------------------------------------
    def up(self, count, layout_names=(layouts.BARE,), seed=0):
        """Bring up *count* hosts, layouts assigned round-robin; on any failure, tear down."""
        if not 1 <= count <= MAX_HOSTS:
            raise ValueError("host count must be 1..{0}".format(MAX_HOSTS))
        names = layouts.validate(layout_names)
        if any(self._alive(h) for h in self.load()["hosts"].values()):
            raise RuntimeError("a fleet is already up in {0}; run down first".format(self.state_dir))
        self.down()
        self._forget_trees()
        image = rootfs.ensure()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {"net": None, "rootfs": str(image), "hosts": {},
                 "owner": hostlib.Proc.of(os.getpid()).as_dict()}
        self._save(state)
        try:
            state["net"] = self._claim_net()
            self._save(state)
            self._make_key()
            for index, layout in enumerate(islice(cycle(names), count), start=1):
                name = "h{0}".format(index)
                host = {"index": index, "layout": layout,
                        "address": "127.100.{0}.{1}".format(state["net"], index)}
                state["hosts"][name] = host
                self._save(state)
                self._prepare(name, host, image, seed)
            for host in state["hosts"].values():
                netcheck.ensure_unused(host["address"], 22)
            self._launch_all(state)
            self._await_all(state)
            self._write_inventory(state)
        except BaseException:
            self.down()
            raise
        return self

    def _forget_trees(self):
        """Start every up from pristine hosts: drop the upper layers of an earlier run.  Only
        ever with nothing mounted there, so the removal cannot reach into a live tree."""
        if self.mounts():
            raise RuntimeError("mounts remain under {0}: {1}".format(self._prefix, self.mounts()))
        shutil.rmtree(str(self.state_dir / "hosts"), ignore_errors=True)

    def _make_key(self):
        if not self.private_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "testfleet",
                            "-f", str(self.private_key)], check=True)

    def _prepare(self, name, host, image, seed):
        """Mount the host's overlay and write users, layout and login key into it."""
        base = self.host_dir(name)
        root = self.root_of(name)
        hostlib.mount_overlay(str(image), str(base / "upper"), str(base / "work"), str(root))
        (root / "etc/hostname").write_text(name + "\n")
        with open(root / "etc/hosts", "a") as etc_hosts:
            etc_hosts.write("{0}\t{1}\n".format(host["address"], name))
        authorize_key(root, "/home/" + rootfs.LOGIN_USER, rootfs.LOGIN_UID, rootfs.LOGIN_UID,
                      (self.private_key.with_suffix(".pub")).read_text())
        manifest = layouts.populate(root, host["layout"], seed + host["index"])
        if manifest is not None:
            manifest.to_json(self.manifest_of(name))

    def _launch_all(self, state):
        deadline = time.monotonic() + ACCEPT_TIMEOUT
        trees = fleet_mounts()
        for name, host in sorted(state["hosts"].items()):
            root = str(self.root_of(name))
            foreign = [p for p in trees if p != root and not p.startswith(root + os.sep)]
            unshare, pid1, popen = hostlib.launch(root, name, host["address"],
                                                  str(self.host_dir(name)), deadline, foreign)
            self._popens.append(popen)
            host["unshare"] = unshare.as_dict() if unshare else None
            host["pid1"] = pid1.as_dict() if pid1 else None
            self._save(state)
            if pid1 is None:
                raise RuntimeError("{0}: namespace did not start; see {1}".format(
                    name, self.host_dir(name) / hostlib.LOG_NAME))

    def _await_all(self, state):
        deadline = time.monotonic() + ACCEPT_TIMEOUT + ACCEPT_PER_HOST * len(state["hosts"])
        for name, host in sorted(state["hosts"].items()):
            pid1 = hostlib.Proc.from_dict(host["pid1"])
            if not netcheck.wait_for_accept(host["address"], 22, deadline, pid1.alive):
                log = self.host_dir(name) / hostlib.LOG_NAME
                raise RuntimeError("{0}: sshd on {1}:22 is not accepting; log {2}:\n{3}".format(
                    name, host["address"], log, log.read_text()[-2000:]))

    def _write_inventory(self, state):
        lines = ["[fleet]"]
        by_layout = {}
        for name in self.hosts:
            host = state["hosts"][name]
            lines.append("{0} ansible_host={1} fleet_layout={2}".format(
                name, host["address"], host["layout"]))
            by_layout.setdefault(host["layout"], []).append(name)
        for layout, members in sorted(by_layout.items()):
            lines += ["", "[layout_{0}]".format(layout)] + members
        ssh_args = "-o UserKnownHostsFile={0} -o StrictHostKeyChecking=no".format(self.known_hosts)
        lines += [
            "", "[fleet:vars]",
            "ansible_user={0}".format(rootfs.LOGIN_USER),
            "ansible_ssh_private_key_file={0}".format(self.private_key),
            "ansible_ssh_common_args='{0}'".format(ssh_args),
            "ansible_host_key_checking=false",
            "ansible_python_interpreter=/usr/bin/python3",
        ]
        self.inventory.write_text("\n".join(lines) + "\n")

    # -- down ----------------------------------------------------------------------------------
    @staticmethod
    def _procs(host):
        return (hostlib.Proc.from_dict(host.get("unshare")), hostlib.Proc.from_dict(host.get("pid1")))

    def _alive(self, host):
        return any(p is not None and p.alive() for p in self._procs(host))

    def mounts(self):
        """Mount points under our hosts/ dir, deepest first."""
        with open("/proc/self/mountinfo") as handle:
            points = [line.split()[4] for line in handle]
        return sorted((p for p in points if p.startswith(self._prefix)), key=len, reverse=True)

    def stop_host(self, name):
        """Kill one host's PID 1 (its sshd), as when an instance dies mid-run: its namespace and
        every session in it go down at once.  :meth:`down` still cleans up after it."""
        hostlib.Proc.from_dict(self.load()["hosts"][name]["pid1"]).signal(signal.SIGKILL)

    def down(self):
        """Stop every host, unmount every tree, release the subnet.  Safe on partial state."""
        state = self.load()
        hostlib.stop_all([self._procs(h) for h in state["hosts"].values()])
        hostlib.stop_all([(None, proc) for proc in hostlib.processes_under(self._prefix)])
        for popen in self._popens:
            popen.wait()
        self._popens = []
        for point in self.mounts():
            hostlib.unmount(point)
        if state["net"] is not None:
            self._release_net(state["net"])
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        with contextlib.suppress(FileNotFoundError):
            self.inventory.unlink()

    # -- status --------------------------------------------------------------------------------
    def describe(self):
        """One dict per host: what a connection (or molecule's instance config) needs."""
        state = self.load()
        return [{
            "name": name,
            "address": state["hosts"][name]["address"],
            "layout": state["hosts"][name]["layout"],
            "user": rootfs.LOGIN_USER,
            "identity_file": str(self.private_key),
            "root": str(self.root_of(name)),
            "manifest": str(self.manifest_of(name)) if self.manifest_of(name).exists() else None,
            "running": self._alive(state["hosts"][name]),
            "mounted": hostlib.is_mounted(str(self.root_of(name))),
        } for name in self.hosts]

    # -- driving ansible -----------------------------------------------------------------------
    def _run(self, tool, args, **kwargs):
        binary = Path(sys.executable).parent / tool
        argv = [str(binary) if binary.exists() else tool, "-i", str(self.inventory)] + list(args)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(argv, check=kwargs.pop("check", False), **kwargs)

    def ansible(self, *args, **kwargs):
        """Run ``ansible`` against this fleet's inventory (args after ``-i INVENTORY``)."""
        return self._run("ansible", args, **kwargs)

    def playbook(self, *args, **kwargs):
        """Run ``ansible-playbook`` against this fleet's inventory."""
        return self._run("ansible-playbook", args, **kwargs)

    def run_module(self, pattern, module, args="", become=False, forks=20):
        """Run one module ad hoc and return ``{host: result}``, so a test can assert on results
        instead of scraping text.  Uses core's ``tree`` callback (one JSON file per host)."""
        with tempfile.TemporaryDirectory(prefix="testfleet-tree-") as tree:
            env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                       ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
                       ANSIBLE_CALLBACK_TREE_DIR=tree)
            argv = [pattern, "-m", module, "-a", args, "-f", str(forks)]
            done = self.ansible(*(argv + (["--become"] if become else [])), env=env)
            results = {path.name: json.loads(path.read_text()) for path in Path(tree).iterdir()}
        if not results:
            raise RuntimeError("ansible rc={0} reported no host: {1}{2}".format(
                done.returncode, done.stdout, done.stderr))
        return results


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def running(state_dir, count, layout_names=(layouts.BARE,), seed=0):
    """A fleet that is up inside the ``with`` block and down after it, whatever happens.

    ``atexit`` covers an interpreter exit that skips the ``finally`` (e.g. from a thread), and
    SIGTERM is turned into SystemExit so a killed test run still tears its hosts down.
    """
    fleet = Fleet(state_dir)
    atexit.register(fleet.down)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield fleet.up(count, layout_names, seed)
    finally:
        try:
            fleet.down()
        finally:
            atexit.unregister(fleet.down)
            signal.signal(signal.SIGTERM, previous)
