# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda_pkgs_backup run as Ansible runs it (a process with an args file) on a condafab host tree
(``backup_host``): ``changed`` semantics, check mode and diff, the three states, and the refusals.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from unit.plugins.modules.backup_host import build_host, module_command, run_module

STOPPER = Path(__file__).with_name("stop_at_step.py")


@pytest.fixture
def host(tmp_path):
    return build_host(tmp_path)


def tree(path):
    """Every file below ``path`` with its sha256: a snapshot to prove nothing was written."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(path).rglob("*") if p.is_file()}


def tarballs(cache):
    return sorted(n for n in os.listdir(cache) if n.endswith((".conda", ".tar.bz2")))


def test_check_mode_lists_copies_and_bytes_and_writes_nothing(tmp_path, host):
    before = tree(host["dest"]), tree(host["cache"])
    result = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1",
                        _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] is True, result
    assert (tree(host["dest"]), tree(host["cache"])) == before
    files = tarballs(host["cache"])
    assert sorted(c["fn"] for c in result["copied"]) == files
    assert result["bytes_copied"] == sum(os.path.getsize(os.path.join(host["cache"], f)) for f in files)
    assert result["manifest"] is None
    assert len(result["diff"]["after"].splitlines()) == len(files)
    assert result["msg"].startswith("would copy %d tarball(s)" % len(files))


def test_backup_then_rerun_is_not_changed(tmp_path, host):
    first = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1")
    assert first["changed"] is True and first["rejected"] == [], first
    assert Path(first["manifest"]).parent == Path(host["dest"], "manifests", "h1")
    second = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1")
    assert second["changed"] is False and second["manifest"] is None
    assert second["unchanged"] == len(tarballs(host["cache"])) and second["copied"] == []


def test_verified_reports_corruption_and_fails_only_when_asked(tmp_path, host):
    run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1")
    victim = sorted(Path(host["dest"], "store", "sha256").glob("*/*"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    report = run_module(tmp_path, dest=host["dest"], state="verified", host_id="h1")
    assert report["changed"] is False and not report.get("failed")
    assert [c["sha256"] for c in report["corrupt"]] == [victim.name] and report["missing"] == []
    assert report["checked"] == len(tarballs(host["cache"]))
    strict = run_module(tmp_path, dest=host["dest"], state="verified", host_id="h1", fail_on_mismatch=True)
    assert strict["failed"] is True and strict["corrupt"]


def test_restored_puts_tarballs_back_and_then_changes_nothing(tmp_path, host):
    run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1")
    files = tarballs(host["cache"])
    for fn in files[:3]:
        os.unlink(os.path.join(host["cache"], fn))
    preview = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1", state="restored",
                         _ansible_check_mode=True)
    assert preview["changed"] is True and sorted(r["fn"] for r in preview["restored"]) == files[:3]
    assert tarballs(host["cache"]) == files[3:]
    done = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1", state="restored")
    assert done["cache"] == host["cache"] and done["record_mismatch"] == [] and done["rejected"] == []
    assert sorted(r["fn"] for r in done["restored"]) == files[:3] and done["present"] == len(files) - 3
    assert tarballs(host["cache"]) == files
    again = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1", state="restored")
    assert again["changed"] is False and again["restored"] == [] and again["urls_added"] == []


@pytest.mark.parametrize("where", ["pkgs/backup", "envs/web/backup", "backup"])
def test_dest_inside_a_cache_or_an_environment_is_refused(tmp_path, host, where):
    dest = os.path.join(host["root"], where)
    os.makedirs(dest)
    result = run_module(tmp_path, dest=dest, roots=[host["root"]], host_id="h1")
    assert result["failed"] is True and "is inside the" in result["msg"], result
    assert os.listdir(dest) == []


def test_missing_dest_and_broken_manifest_are_clear_errors(tmp_path, host):
    missing = run_module(tmp_path, dest=str(tmp_path / "not-mounted"), roots=[host["root"]], host_id="h1")
    assert missing["failed"] is True and "does not exist" in missing["msg"]
    run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1")
    broken = Path(host["dest"], "manifests", "h1", "29991231T000000.000000Z.json")
    broken.write_text("{ not json")
    result = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1", state="restored")
    assert result["failed"] is True and "does not parse" in result["msg"] and str(broken) in result["msg"]


def test_damaged_objects_are_repaired_and_check_mode_predicts_the_repair(tmp_path, host):
    """Issue 13, reproduction 6: a truncated object, then one with a flipped byte whose tarball is
    read again, are replaced by the verified tarball; the run says so and records it."""
    first = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1")
    by_sha = {hashlib.sha256(Path(host["cache"], fn).read_bytes()).hexdigest(): fn for fn in tarballs(host["cache"])}
    truncated, flipped = sorted(by_sha)[:2]
    objects = Path(host["dest"], "store", "sha256")
    victim = objects / truncated[:2] / truncated
    victim.write_bytes(victim.read_bytes()[:-7])
    other = objects / flipped[:2] / flipped
    data = other.read_bytes()
    other.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    os.utime(Path(host["cache"], by_sha[flipped]))  # the tarball is read again
    found = run_module(tmp_path, dest=host["dest"], state="verified", host_id="h1")
    assert sorted(c["sha256"] for c in found["corrupt"]) == sorted([truncated, flipped])
    before = tree(host["dest"])
    preview = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1",
                         _ansible_check_mode=True, _ansible_diff=True)
    assert preview["changed"] is True and tree(host["dest"]) == before
    assert sorted(r["sha256"] for r in preview["repaired"]) == sorted([truncated, flipped]), preview["msg"]
    assert preview["copied"] == [] and "would repair 2 damaged object(s)" in preview["msg"]
    assert len(preview["diff"]["after"].splitlines()) == 2
    done = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1")
    assert done["changed"] is True and done["copied"] == [] and done["rejected"] == [], done["msg"]
    assert [(r["sha256"], r["fn"], r["damage"]) for r in done["repaired"]] == [
        (r["sha256"], r["fn"], r["damage"]) for r in preview["repaired"]]
    assert "repaired 2 damaged object(s)" in done["msg"]
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == truncated
    assert hashlib.sha256(other.read_bytes()).hexdigest() == flipped
    assert done["manifest"] != first["manifest"]
    recorded = json.loads(Path(done["manifest"]).read_text())["repaired"]
    assert sorted(r["sha256"] for r in recorded) == sorted([truncated, flipped])
    report = run_module(tmp_path, dest=host["dest"], state="verified", host_id="h1")
    assert report["corrupt"] == [] and report["missing"] == []
    again = run_module(tmp_path, dest=host["dest"], roots=[host["root"]], host_id="h1")
    assert again["changed"] is False and again["repaired"] == []


# -- killed at every step ----------------------------------------------------------------------------

def killed_at(tmp_path, step, log, **args):
    """Run the module until just before its ``step``-th filesystem change (``stop_at_step``), SIGKILL
    it there, and return that step's line of ``log``.  With ``step`` 0 the run completes."""
    argv, env = module_command(tmp_path, args, launcher=("-B", str(STOPPER)))
    env.update(STEP_ROOT=str(tmp_path / "work"), STEP_LOG=str(log), STEP=str(step))
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status = os.waitpid(proc.pid, os.WUNTRACED)
    if step == 0:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        return None
    assert os.WIFSTOPPED(status), "step %d: the run ended before it (status %d)" % (step, status)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    return log.read_text().splitlines()[-1]


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def store_state(dest):
    """``(objects, entries)``: every stored object by name with the sha256 of its content, and every
    ``(source, sha256)`` any manifest lists (each manifest must parse: none is ever partial)."""
    objects = {p.name: sha256_of(p) for p in Path(dest, "store", "sha256").glob("*/*")}
    entries = set()
    for path in Path(dest, "manifests").glob("*/*.json"):
        entries.update((e["source"], e["sha256"]) for e in json.loads(path.read_text())["entries"])
    return objects, entries


class KillBench(object):
    """A small backup host built once under ``pristine`` (four tarballs: enough steps, and each kill
    costs about a second) and copied afresh to ``work`` (``host``: its paths) before each run."""

    def __init__(self, tmp_path):
        self.tmp_path, self.work = tmp_path, tmp_path / "work"
        self.pristine = build_host(tmp_path / "pristine", packages=3)
        for fn in tarballs(self.pristine["cache"])[::2]:
            os.unlink(os.path.join(self.pristine["cache"], fn))
        self.host = {key: path.replace(str(tmp_path / "pristine"), str(self.work)) for key, path in self.pristine.items()}

    def fresh(self):
        shutil.rmtree(self.work, ignore_errors=True)
        subprocess.run(["cp", "-a", str(self.tmp_path / "pristine"), str(self.work)], check=True)

    def kills(self, args):
        """Count the steps of a run from the pristine state, then yield ``(step, its log line, every
        step's line)`` after killing a fresh run before each."""
        self.fresh()
        killed_at(self.tmp_path, 0, self.tmp_path / "count.log", **args)
        steps = (self.tmp_path / "count.log").read_text().splitlines()
        for step in range(1, len(steps) + 1):
            self.fresh()
            line = killed_at(self.tmp_path, step, self.tmp_path / ("step%d.log" % step), **args)
            assert line.split()[:2] == steps[step - 1].split()[:2], (line, steps[step - 1])
            yield step, line, steps

    def finish(self, args, step, line):
        """The rerun completes and leaves a store ``verified`` finds clean; returns the rerun."""
        rerun = run_module(self.tmp_path, **args)
        assert not rerun.get("failed") and rerun["rejected"] == [], (step, line, rerun.get("msg"))
        assert os.listdir(os.path.join(args["dest"], "tmp")) == []
        report = run_module(self.tmp_path, state="verified", host_id="h1", dest=args["dest"])
        assert (report["missing"], report["corrupt"], report["bad_manifests"]) == ([], [], []), (step, line)
        return rerun


@pytest.mark.parametrize("prune_source", [False, True], ids=["backup", "prune_source"])
def test_a_run_killed_at_any_step_loses_nothing_and_the_rerun_completes(tmp_path, prune_source):
    """Issue 13: count the filesystem changes of a first run (directories, temp files, renames into
    the store, the manifest, each tarball pruned), then SIGKILL a fresh run just before each one.
    After every kill: each source tarball is in its cache unchanged, or stored intact and in a
    manifest; no name in the store holds a partial object; a rerun completes; ``verified`` is clean."""
    bench = KillBench(tmp_path)
    args = dict(roots=[bench.host["root"]], host_id="h1", dest=bench.host["dest"], prune_source=prune_source, workers=1)
    cache = bench.host["cache"]
    sources = {os.path.join(cache, fn): sha256_of(os.path.join(bench.pristine["cache"], fn))
               for fn in tarballs(bench.pristine["cache"])}
    observed = []
    for step, line, steps in bench.kills(args):
        if step == 1:
            kinds = {each.split()[1] for each in steps}
            assert {"os.mkdir", "open", "os.rename"} <= kinds and ("os.remove" in kinds) == prune_source, steps
            assert len(steps) >= 3 * len(sources) + 2
        objects, entries = store_state(args["dest"])
        assert all(name == sha for name, sha in objects.items()), "partial object (step %d: %s)" % (step, line)
        gone = []
        for path, sha in sources.items():
            if os.path.exists(path):
                assert sha256_of(path) == sha, (step, path)
            else:
                gone.append(path)
                assert objects.get(sha) == sha and (path, sha) in entries, (step, line, path)
        tmp = os.path.join(args["dest"], "tmp")
        observed.append((step, line.split()[1], len(objects), len(os.listdir(tmp)) if os.path.isdir(tmp) else 0,
                         len(entries), len(gone)))
        bench.finish(args, step, line)
        objects, entries = store_state(args["dest"])
        assert set(objects) == set(sources.values()) and set(sources.items()) <= entries
        assert all(os.path.exists(p) != prune_source for p in sources), (step, line)
    # Kills landed with temp files written but not renamed, with objects but no manifest, and
    # (pruning) with some tarballs gone, others not.
    assert any(temps and stored and not listed for _s, _k, stored, temps, listed, _g in observed), observed
    if prune_source:
        assert any(0 < gone < len(sources) for _s, _k, _o, _t, _e, gone in observed), observed


def test_a_repair_killed_at_any_step_leaves_the_old_object_or_the_new_and_the_rerun_repairs(tmp_path):
    """A run replacing a truncated and a corrupted object, SIGKILLed before each of its changes:
    each damaged name holds its old bytes or the verified tarball, never a mix; the rerun repairs
    what is left and ``verified`` is clean."""
    bench = KillBench(tmp_path)
    run_module(tmp_path, dest=bench.pristine["dest"], roots=[bench.pristine["root"]], host_id="h1")
    objects = sorted(Path(bench.pristine["dest"], "store", "sha256").glob("*/*"))
    with open(objects[0], "r+b") as handle:
        handle.truncate(10)
    data = objects[1].read_bytes()
    objects[1].write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    damaged = {p.name: p.read_bytes() for p in objects[:2]}
    args = dict(roots=[bench.host["root"]], host_id="h1", dest=bench.host["dest"], workers=1)
    healed = set()
    for step, line, steps in bench.kills(args):
        assert sum(" os.rename " in each and "/tmp/" in each for each in steps) >= 3, steps  # 2 objects, 1 manifest
        still = set()
        for path in Path(args["dest"], "store", "sha256").glob("*/*"):
            content = path.read_bytes()
            if hashlib.sha256(content).hexdigest() == path.name:
                healed.update({path.name} & set(damaged))
            else:
                assert content == damaged.get(path.name), "step %d (%s): %s is neither old nor new" % (step, line, path)
                still.add(path.name)
        rerun = bench.finish(args, step, line)
        assert sorted(r["sha256"] for r in rerun["repaired"]) == sorted(still), (step, line)
    assert healed == set(damaged), "no kill landed after a repair"
