"""conda_pkgs_dirs over SSH, run through ansible-runner as AWX runs it.

The module moves caches and rewrites configs, so it gets a small fleet of its own (three hosts:
``softlinked_env``, ``multi_user``, ``single_root``) instead of mutating the session fleet other
tests read.  A second filesystem for a host is a tmpfs mounted from the controller under the
host's root: the namespace is a mount slave, so the host sees it, and fleet teardown unmounts it
in any case.
"""

import json
import os
import stat
import sys
import tempfile

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


def call(fleet, host, args, tmp_path, check=False):
    """The module's result for one host, from ansible-runner's job events."""
    cmdline = "--become" + (" --check --diff" if check else "")
    run = ansible_runner.run(
        private_data_dir=tempfile.mkdtemp(dir=str(tmp_path)), inventory=str(fleet.inventory), host_pattern=host,
        module=MODULE, module_args=json.dumps(args), cmdline=cmdline, quiet=True,
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
