"""conda_pkgs_dirs over SSH, run through ansible-runner as AWX runs it.

The module moves caches and rewrites configs, so it gets a small fleet of its own (three hosts:
``softlinked_env``, ``multi_user``, ``single_root``) instead of mutating the session fleet other
tests read.  A second filesystem for a host is a tmpfs mounted from the controller under the
host's root: the namespace is a mount slave, so the host sees it, and fleet teardown unmounts it
in any case.
"""

import hashlib
import json
import os
import signal
import stat
import sys
import tempfile
import threading
import time

import subprocess

import ansible_runner
import pytest

from testfleet.fleet import running

MODULE = "pkgcache.fleet.conda_pkgs_dirs"


@pytest.fixture(scope="module")
def hosts(fleet_state_factory):
    with running(fleet_state_factory("pkgs_dirs"), 3, ["softlinked_env", "multi_user", "single_root"]) as up:
        yield up


def by_layout(fleet, layout):
    return next(h["name"] for h in fleet.describe() if h["layout"] == layout)


def call(fleet, host, args, tmp_path, check=False, diff=False, module=MODULE):
    """The module's result for one host, from ansible-runner's job events (check implies diff)."""
    cmdline = "--become" + (" --check" if check else "") + (" --diff" if check or diff else "")
    run = ansible_runner.run(
        private_data_dir=tempfile.mkdtemp(dir=str(tmp_path)), inventory=str(fleet.inventory), host_pattern=host,
        module=module, module_args=json.dumps(args), cmdline=cmdline, quiet=True,
        envvars={"ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH", ""),
                 # The venv's ansible, as `make integration` puts it first on PATH.
                 "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")})
    for event in run.events:
        if event.get("event") in ("runner_on_ok", "runner_on_failed"):
            result = dict(event["event_data"]["res"])
            result["failed"] = event["event"] == "runner_on_failed"
            return result
    raise AssertionError("no result from %s: rc=%s %s" % (host, run.rc, run.stdout.read()[-2000:]))


def symlinks_and_broken(fleet, host, top):
    """Symlinks under ``top`` and how many dangle, resolved inside the host (absolute targets
    chain through the host's own ``/opt/conda/pkgs`` link, which the controller cannot follow)."""
    result = fleet.run_module(host, "ansible.builtin.shell",
                              "find {0} -type l | wc -l; find {0} -xtype l | wc -l".format(top), become=True)
    return [int(n) for n in result[host]["stdout"].split()]


def test_move_with_link_old_keeps_soft_env_then_is_idempotent(hosts, tmp_path):
    host = by_layout(hosts, "softlinked_env")
    root = hosts.root_of(host)
    args = {"root": "/opt/conda", "pkgs_dirs": ["/srv/conda/pkgs"], "migrate": True, "link_old": True}
    before = sorted(os.listdir(str(root / "opt/conda/pkgs")))

    planned = call(hosts, host, args, tmp_path, check=True)
    assert planned["changed"] and planned["migration"]["method"] == "rename"
    assert planned["migration"]["softlinked_envs"], "the layout's soft-linked env is seen"
    assert "pkgs_dirs:\n  - /srv/conda/pkgs\n" in planned["diff"][0]["after"]
    assert sorted(os.listdir(str(root / "opt/conda/pkgs"))) == before, "check mode moved nothing"

    done = call(hosts, host, args, tmp_path)
    assert done["changed"] and not done["failed"], done.get("msg")
    assert done["pkgs_dirs"] == ["/srv/conda/pkgs"]
    assert os.readlink(str(root / "opt/conda/pkgs")) == "/srv/conda/pkgs"
    assert sorted(os.listdir(str(root / "srv/conda/pkgs"))) == before
    links, broken = symlinks_and_broken(hosts, host, "/opt/conda/envs/linked")
    assert links > 0 and broken == 0

    again = call(hosts, host, args, tmp_path)
    assert again["changed"] is False and again["migration"] is None


def test_user_scope_creates_a_cache_owned_by_the_user(hosts, tmp_path):
    host = by_layout(hosts, "softlinked_env")
    root = hosts.root_of(host)
    args = {"root": "/opt/conda", "scope": "user", "user": "alice", "pkgs_dirs": ["~/big/pkgs", "/opt/conda/pkgs"],
            "mode": "0750"}
    done = call(hosts, host, args, tmp_path)
    assert done["changed"], done.get("msg")
    assert done["created"] == ["/home/alice/big/pkgs"]
    st = os.stat(str(root / "home/alice/big/pkgs"))
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (1001, 0o750)
    assert sorted(os.listdir(str(root / "home/alice/big/pkgs"))) == ["urls", "urls.txt"]
    assert (root / "home/alice/.condarc").read_text() == "pkgs_dirs:\n  - ~/big/pkgs\n  - /opt/conda/pkgs\n"
    assert call(hosts, host, args, tmp_path)["changed"] is False


def test_final_in_etc_conda_refuses_a_system_change_and_leaves_the_file(hosts, tmp_path):
    host = by_layout(hosts, "multi_user")
    root = hosts.root_of(host)
    before = (root / "opt/conda/.condarc").read_text()
    result = call(hosts, host, {"root": "/opt/conda", "pkgs_dirs": ["/srv/pkgs"]}, tmp_path)
    assert result["failed"] and "/etc/conda/condarc.d/50-caches.yml marks pkgs_dirs #!final" in result["msg"]
    assert (root / "opt/conda/.condarc").read_text() == before


def shell(fleet, host, command):
    return fleet.run_module(host, "ansible.builtin.shell", command, become=True)[host]["stdout"]


def test_cross_filesystem_move_copies_verifies_and_reports_what_the_old_disk_gains(hosts, tmp_path):
    host = by_layout(hosts, "single_root")
    root = hosts.root_of(host)
    fast = root / "srv" / "fast"
    fast.mkdir(parents=True)
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(fast)])
    try:
        assert shell(hosts, host, "stat -f -c %T /srv/fast /opt/conda").split() == ["tmpfs", "overlayfs"]
        env_files = "find /opt/conda/envs -type f -exec sha256sum {} + | sort"
        before_envs = shell(hosts, host, env_files)
        tarballs = "cd {0} && sha256sum *.conda *.tar.bz2 | sort"
        before_tarballs = shell(hosts, host, tarballs.format("/opt/conda/pkgs"))
        args = {"root": "/opt/conda", "pkgs_dirs": ["/srv/fast/pkgs"], "migrate": True}
        done = call(hosts, host, args, tmp_path)
        assert done["changed"] and not done["failed"], done.get("msg")
        move = done["migration"]
        assert move["method"] == "copy"
        assert 0 < move["old_fs_gain_bytes"] < move["cache_disk_bytes"]
        assert move["held_by_environments_bytes"] == move["cache_disk_bytes"] - move["old_fs_gain_bytes"]
        assert "old filesystem gains" in done["msg"]
        assert shell(hosts, host, "test -e /opt/conda/pkgs || echo gone") == "gone"
        assert shell(hosts, host, tarballs.format("/srv/fast/pkgs")) == before_tarballs
        assert shell(hosts, host, env_files) == before_envs
        assert call(hosts, host, args, tmp_path)["changed"] is False
    finally:
        subprocess.call(["umount", str(fast)])


def _module_processes_in(mount, inside):
    """PIDs of the module's Python processes that see ``mount`` (seen from here) at ``inside``:
    this host's, not those of other fleets running the same module."""
    want = os.stat(mount)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
            if not (b"python" in argv[0] and any(b"AnsiballZ_conda_pkgs_dirs" in a for a in argv)):
                continue
            seen = os.stat("/proc/%s/root%s" % (pid, inside))
        except OSError:
            continue
        if (seen.st_dev, seen.st_ino) == (want.st_dev, want.st_ino):
            found.append(int(pid))
    return found


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_a_move_killed_mid_copy_is_rolled_back_and_redone_by_the_rerun(hosts, tmp_path):
    """Issue 13, reproduction 5: the module is SIGKILLed on the host while it copies across
    filesystems; the staging dir it leaves used to block every later run ("merging caches is
    not supported").  Now the rerun reads the journal, removes the partial copy and moves."""
    host = by_layout(hosts, "single_root")
    root = hosts.root_of(host)
    mini = root / "srv" / "mini"
    (mini / "conda-meta").mkdir(parents=True)
    (mini / "conda-meta" / "history").write_text("")
    pkgs = mini / "pkgs"
    pkgs.mkdir()
    (pkgs / "urls").write_text("")
    tarballs = ["big%d-1.0-0.tar.bz2" % i for i in range(3)]
    (pkgs / "urls.txt").write_text("".join("https://example.invalid/%s\n" % fn for fn in tarballs))
    for number, fn in enumerate(tarballs):  # large enough that the copy takes a while
        with open(str(pkgs / fn), "wb") as handle:
            handle.write(os.urandom(1 << 16) + bytes([number]))
            for _block in range(128):
                handle.write(b"\0" * (1 << 20))
    sums = dict((fn, _sha256(str(pkgs / fn))) for fn in tarballs)
    kill = root / "srv" / "kill"
    kill.mkdir()
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", str(kill)])
    try:
        args = {"root": "/srv/mini", "pkgs_dirs": ["/srv/kill/pkgs"], "migrate": True}
        first = []
        runner = threading.Thread(target=lambda: first.append(call(hosts, host, args, tmp_path)))
        runner.start()
        journal = kill / "pkgs" / ".pkgcache-relocate" / "journal.json"
        killed, deadline = [], time.time() + 120
        while not killed and runner.is_alive() and time.time() < deadline:
            if journal.exists() and json.loads(journal.read_text())["step"] == "copy":
                killed = _module_processes_in(str(kill), "/srv/kill")
                for pid in killed:
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)
        runner.join(120)
        assert killed, "the module was not caught copying: %s" % first
        assert first and first[0]["failed"]
        assert json.loads(journal.read_text())["step"] == "copy", "killed mid-copy, the journal says so"
        assert not (mini / ".condarc").exists(), "config untouched"
        assert dict((fn, _sha256(str(pkgs / fn))) for fn in tarballs) == sums, "old cache intact"

        again = call(hosts, host, args, tmp_path)
        assert again["changed"] and not again["failed"], again.get("msg")
        assert again["recovery"]["step"] == "copy" and again["migration"]["method"] == "copy"
        assert (mini / ".condarc").read_text() == "pkgs_dirs:\n  - /srv/kill/pkgs\n"
        assert sorted(os.listdir(str(kill / "pkgs"))) == sorted(tarballs + ["urls", "urls.txt"])
        assert dict((fn, _sha256(str(kill / "pkgs" / fn))) for fn in tarballs) == sums
        assert not os.path.lexists(str(pkgs))
        assert call(hosts, host, args, tmp_path)["changed"] is False
    finally:
        subprocess.call(["umount", str(kill)])
