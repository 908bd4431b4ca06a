"""Input a user controls on a shared host, over SSH with become (issue 13, reproductions 3 and 4).

Bytes that are not UTF-8 in a file a user writes, or in a file name inside a cache, must become a
warning naming the file or an escaped name in the result: never a crash, and never a result the
controller refuses after the module already deleted.  A relative ``pkgs_dirs`` entry is refused
before anything moves.  Each test has a host of its own: on the code before the fix these runs
damage the host.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from decoys import checksums, give, write
from testfleet import rootfs
from testfleet.fleet import running

ALICE = (1001, 1001)


def run(fleet, host, module, args=None, check=False):
    """One module's result; ``check`` adds --check (ad hoc runs have no other way to ask)."""
    text = json.dumps(args) if args else ""
    if not check:
        return fleet.run_module(host, module, text, become=True)[host]
    return fleet.ansible(host, "-m", module, "-a", text, "--become", "--check", "-o")


def refused_by_the_controller(result):
    return "Refusing to deserialize" in json.dumps(result)


def test_a_byte_in_environments_txt_is_a_warning_naming_the_file_and_clean_goes_on(fleet_state_factory):
    with running(fleet_state_factory("envtxt"), 1, ("single_root",)) as fleet:
        host = fleet.hosts[0]
        root = fleet.root_of(host)
        listing = write(root / "home/alice/.conda/environments.txt", b"/home/alice/env\xff\n", ALICE)
        give(listing.parent, ALICE, root / "home/alice")
        facts = run(fleet, host, "pkgcache.fleet.conda_cache_facts")
        assert "ansible_facts" in facts, facts
        warnings = facts["ansible_facts"]["conda_cache"]["warnings"]
        assert "/home/alice/.conda/environments.txt: lines that are not UTF-8, read as raw bytes" in warnings
        preview = run(fleet, host, "pkgcache.fleet.conda_clean", check=True)
        assert preview.returncode == 0 and "would remove" in preview.stdout, preview.stdout + preview.stderr


def test_names_that_are_not_utf8_come_back_escaped_and_are_removed_by_their_bytes(fleet_state_factory):
    with running(fleet_state_factory("badnames"), 1, ("single_root",)) as fleet:
        host = fleet.hosts[0]
        root = fleet.root_of(host)
        pkgs = root / "opt/conda/pkgs"
        tarball = write(pkgs / os.fsdecode(b"bad\xff-1.0-0.tar.bz2"), b"x" * 100)
        extracted = write(pkgs / os.fsdecode(b"bad\xfe-1.0-0") / "info/index.json", b"{}").parent.parent
        write(extracted / os.fsdecode(b"lib/f\xfd\\x41"), b"y")
        pip_entry = write(root / "home/alice/.cache/pip/http-v2/a" / os.fsdecode(b"body\xff"), b"z", ALICE)
        give(pip_entry.parent, ALICE, root / "home/alice")

        facts = run(fleet, host, "pkgcache.fleet.cache_facts")
        assert "ansible_facts" in facts and not refused_by_the_controller(facts), facts
        unused = [p["path"] for c in facts["ansible_facts"]["conda_cache"]["caches"] for p in c.get("unused_packages", [])]
        assert "/opt/conda/pkgs/bad\\xfe-1.0-0" in unused
        assert "/home/alice/.cache/pip" in json.dumps(facts["ansible_facts"]["pip_cache"])

        preview = run(fleet, host, "pkgcache.fleet.conda_clean", check=True)
        assert preview.returncode == 0, preview.stdout + preview.stderr
        assert "/opt/conda/pkgs/bad\\\\xff-1.0-0.tar.bz2" in preview.stdout  # JSON doubles the backslash

        done = run(fleet, host, "pkgcache.fleet.conda_clean")
        assert "removed" in done and not refused_by_the_controller(done), done
        assert "/opt/conda/pkgs/bad\\xff-1.0-0.tar.bz2" in done["removed"]
        assert "/opt/conda/pkgs/bad\\xfe-1.0-0" in done["removed"]
        assert not os.path.lexists(os.fsencode(str(tarball))) and not os.path.lexists(os.fsencode(str(extracted)))

        pip = run(fleet, host, "pkgcache.fleet.pip_cache_clean", {"users": ["alice"], "purge": True})
        assert "removed" in pip and not refused_by_the_controller(pip), pip
        assert any(("/home/alice/.cache/pip/http-v2/a/body\\xff" + "/").startswith(p + "/") for p in pip["removed"])
        assert not os.path.lexists(os.fsencode(str(pip_entry)))


def test_a_relative_pkgs_dirs_entry_is_refused_before_anything_moves(fleet_state_factory):
    with running(fleet_state_factory("relative"), 1, ("single_root",)) as fleet:
        host = fleet.hosts[0]
        root = fleet.root_of(host)
        login_home = root / "home" / rootfs.LOGIN_USER
        fleet.run_module(host, "ansible.builtin.ping", become=True)  # ~/.ansible exists before judging
        before = checksums(root / "opt/conda"), sorted(os.listdir(str(login_home)))
        result = run(fleet, host, "pkgcache.fleet.conda_pkgs_dirs",
                     {"root": "/opt/conda", "pkgs_dirs": ["data/pkgs"], "migrate": True})
        assert "must be absolute paths" in result.get("msg", ""), result
        assert "refusing 'data/pkgs'" in result["msg"]
        assert (checksums(root / "opt/conda"), sorted(os.listdir(str(login_home)))) == before
        assert not Path(root / "root/data").exists()
