"""conda_pkgs_dirs run as Ansible runs it (the module file in a process of its own with an args
file) on a fixture installation on a tmpfs, moving to a second tmpfs: check mode fails where the
real run would, with the same message, and a failed run says what it changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..module_utils.test_conda_relocate import SYSTEM_CONDARC, Fixture, snapshot, tmpfs

LINK = Path(__file__).resolve().parents[4] / ".build" / "link"
MODULE = LINK / "ansible_collections/pkgcache/fleet/plugins/modules/conda_pkgs_dirs.py"


def run_module(tmp_path: Path, args: dict, check_mode=False) -> dict:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check_mode)}))
    env = dict(os.environ, PYTHONPATH=str(LINK), ANSIBLE_COLLECTIONS_PATH=str(LINK))
    done = subprocess.run([sys.executable, str(MODULE), str(args_file)], env=env, capture_output=True, text=True,
                          check=False)
    return json.loads(done.stdout)


def check_then_real(tmp_path, args):
    """Both runs' results; both must fail the same way."""
    checked = run_module(tmp_path, args, check_mode=True)
    real = run_module(tmp_path, args)
    assert checked.get("failed") and real.get("failed"), (checked, real)
    assert checked["msg"] == real["msg"]
    assert not real.get("changed")
    return checked["msg"]


def test_a_read_only_destination_fails_in_check_mode_as_in_the_real_run(tmp_path):
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2") as disk2:
        fx = Fixture(disk1, softlinked=False)
        subprocess.check_call(["mount", "-o", "remount,ro", disk2])
        before = snapshot(disk1)
        args = {"root": fx.root, "pkgs_dirs": [disk2 + "/pkgs"], "migrate": True}
        message = check_then_real(tmp_path, args)
        assert message == "%s/pkgs: cannot move the cache there, %s is on a read-only filesystem" % (
            disk2, disk2)
        assert snapshot(disk1) == before and os.listdir(disk2) == []


def test_a_destination_without_room_fails_in_check_mode_as_in_the_real_run(tmp_path):
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2", size="256k") as disk2:
        fx = Fixture(disk1, softlinked=False)
        before = snapshot(disk1)
        message = check_then_real(tmp_path, {"root": fx.root, "pkgs_dirs": [disk2 + "/pkgs"], "migrate": True})
        assert "the copy needs" in message and "available on %s" % disk2 in message
        assert snapshot(disk1) == before and os.listdir(disk2) == []


def test_a_failed_move_reports_that_nothing_changed(tmp_path):
    """Issue 14: a failure that rolled back returned changed and config_changed true."""
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2") as disk2:
        fx = Fixture(disk1, softlinked=False)
        dest = disk2 + "/pkgs"
        os.mkdir(dest)
        for marker in ("urls", "urls.txt"):
            open(os.path.join(dest, marker), "w").close()
        os.mkfifo(fx.old + "/a-fifo")  # the copy cannot carry it: the move fails mid-way
        args = {"root": fx.root, "pkgs_dirs": [dest], "migrate": True}
        assert run_module(tmp_path, args, check_mode=True)["changed"] is True
        failed = run_module(tmp_path, args)
        assert failed["failed"] and "a-fifo" in failed["msg"] and "untouched" in failed["msg"]
        assert (failed["changed"], failed["config_changed"]) == (False, False)
        assert open(fx.root + "/.condarc").read() == SYSTEM_CONDARC
        assert sorted(os.listdir(dest)) == ["urls", "urls.txt"]
