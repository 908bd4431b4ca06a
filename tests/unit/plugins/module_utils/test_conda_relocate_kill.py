# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A move across two filesystems killed with SIGKILL at each of its filesystem steps.

The first run, in a forked child, counts the filesystem changes the move makes (mkdir, rename,
unlink, rmdir, symlink, link: the copy's directories, the journal's atomic writes, each entry
renamed into place, the config switch, the old cache renamed aside and removed).  Then for each
step the pristine host is put back and a child is killed (SIGKILL, by itself, just before that
change).  After each kill: no package is lost (each is whole in the old cache or the new one, and
the cache the config points at is complete when the config points at it), the config is the old
or the new text and conda's rules read it, a rerun completes, and the result is what the
uninterrupted run left.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import signal
import stat
import subprocess

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_config, conda_relocate_move
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_relocate import (
    RelocateError, apply, build_plan)

from .killpoints import forked, kill_before
from .test_conda_relocate import SYSTEM_CONDARC, Fixture, assert_env_intact, tmpfs

_FS_CALLS = ("mkdir", "rename", "unlink", "rmdir", "symlink", "link")


def digest(top):
    """``{relpath: (type, mode, size, link count, sha256 or symlink target)}`` of a tree."""
    found = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    content = hashlib.sha256(handle.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            else:
                content = None
            nlink = None if stat.S_ISDIR(st.st_mode) else st.st_nlink
            found[os.path.relpath(path, top)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                                 None if stat.S_ISDIR(st.st_mode) else st.st_size, nlink, content)
    return found


def entry_digest(path):
    """A cache entry's content (a file or a whole tree), comparable between the two caches."""
    if not os.path.lexists(path):
        return None
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        return tuple(sorted((k, v[0], v[1], v[2], v[4]) for k, v in digest(path).items()))
    with open(path, "rb") as handle:
        return (stat.S_IMODE(st.st_mode), hashlib.sha256(handle.read()).hexdigest())


def _move_killed_at(request_of, step, report_fd=None):
    """Child process: the real plan and move, SIGKILLed just before its ``step``-th filesystem
    change; with ``step`` None it counts them and reports the count."""
    status = 1
    try:
        calls = kill_before(step, _FS_CALLS)
        apply(build_plan(request_of()))
        if report_fd is not None:
            os.write(report_fd, str(calls[0]).encode())
        status = 0
    finally:
        os._exit(status)  # pylint: disable=protected-access


def fork_run(request_of, step=None):
    return forked(lambda report_fd: _move_killed_at(request_of, step, report_fd))


class Disks(object):
    """The fixture host on one tmpfs, the new cache's on another, restorable to pristine."""

    def __init__(self, tmp_path, disk1, disk2):
        self.disk1, self.disk2 = disk1, disk2
        self.fx = Fixture(disk1)
        self.dest = disk2 + "/conda-pkgs"
        self.pristine = str(tmp_path / "pristine")
        subprocess.check_call(["cp", "-a", disk1, self.pristine])
        self.names = sorted(n for n in os.listdir(self.fx.old) if n not in ("urls", "urls.txt"))
        self.entries = dict((n, entry_digest(os.path.join(self.fx.old, n))) for n in self.names)

    def restore(self):
        for disk in (self.disk1, self.disk2):
            subprocess.check_call("rm -rf %s/* %s/.[!.]*" % (disk, disk), shell=True)
        subprocess.check_call("cp -a %s/. %s/" % (self.pristine, self.disk1), shell=True)

    def request(self, **kwargs):
        options = dict(migrate=True, link_old=True)
        options.update(kwargs)
        return self.fx.request([self.dest], **options)

    def state(self):
        """What a finished move leaves: the new cache, the config, the old path, both disks' tops."""
        old = self.fx.old
        return {
            "dest": digest(self.dest),
            "condarc": open(self.fx.root + "/.condarc").read(),
            "old": os.readlink(old) if os.path.islink(old) else os.path.lexists(old),
            "conda": sorted(os.listdir(self.fx.root)),
            "disk2": sorted(os.listdir(self.disk2)),
        }


def differences(got, expected):
    """Only what differs, for a readable failure."""
    out = dict((k, (got[k], expected[k])) for k in got if k != "dest" and got[k] != expected[k])
    out["dest"] = dict((k, (got["dest"].get(k), expected["dest"].get(k))) for k in set(got["dest"]) | set(expected["dest"])
                       if got["dest"].get(k) != expected["dest"].get(k))
    return out


def check_after_kill(disks, new_condarc, whole_in_use):
    """Nothing lost, config old or new and readable, the cache it names complete (when the move
    copies: a rename takes the entries out of the old cache one by one)."""
    fx = disks.fx
    text = open(fx.root + "/.condarc").read()
    assert text in (SYSTEM_CONDARC, new_condarc)
    resolved = conda_config.resolve(fx.root, fx.admin.home, {"HOME": fx.admin.home}, True).pkgs_dirs
    in_use = disks.dest if text == new_condarc else fx.old
    assert resolved[0] == in_use
    old_is_cache = os.path.isdir(fx.old) and not os.path.islink(fx.old)
    for name, content in disks.entries.items():
        in_dest = entry_digest(os.path.join(disks.dest, name)) == content
        in_old = old_is_cache and entry_digest(os.path.join(fx.old, name)) == content
        assert in_dest or in_old, "%s lost" % name
        if whole_in_use:
            assert in_dest if in_use == disks.dest else in_old, "%s missing from the cache in use %s" % (name, in_use)
    assert_env_intact(fx.envs[0], fx.root)


def journal_step(disks):
    """The step the killed run's journal reached (None: no journal)."""
    journal = conda_relocate_move.Journal.find(disks.dest, os.geteuid()) if os.path.isdir(disks.dest) else None
    if journal is None:
        return "no staging"
    return journal.step or "staging without journal"


@pytest.mark.parametrize("method", ["copy", "rename"])
def test_a_move_killed_at_every_step_is_finished_by_the_rerun(tmp_path, method):
    """``copy``: across two filesystems.  ``rename``: on one, where the entries are renamed one by
    one, so a kill can leave the old cache short of some until the rerun (nothing is lost)."""
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2") as disk2:
        disks = Disks(tmp_path, disk1, disk2 if method == "copy" else disk1)
        status, steps = fork_run(disks.request)
        assert status == 0 and steps > 20, (status, steps)
        expected = disks.state()
        new_condarc = expected["condarc"]
        assert new_condarc == SYSTEM_CONDARC + "pkgs_dirs:\n  - %s\n" % disks.dest
        assert expected["old"] == disks.dest and "conda-pkgs" in expected["disk2"]
        seen = {}
        for step in range(1, steps + 1):
            disks.restore()
            status = fork_run(disks.request, step)[0]
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, step
            where = journal_step(disks)
            seen.setdefault(where, []).append(step)
            check_after_kill(disks, new_condarc, whole_in_use=method == "copy")
            status = fork_run(disks.request)[0]
            assert status == 0, "rerun after a kill at step %d (%s) failed" % (step, where)
            got = disks.state()
            assert got == expected, "kill at step %d (%s): %s" % (step, where, differences(got, expected))
            assert not build_plan(disks.request()).changed, step
            for env in disks.fx.envs:
                assert_env_intact(env, disks.fx.root)
        print("\nkills by the journal step they interrupted: %s" % dict(
            (k, "%d (steps %d-%d)" % (len(v), v[0], v[-1])) for k, v in seen.items()))
        journaled = conda_relocate_move.STEPS if method == "copy" else conda_relocate_move.STEPS[1:]
        assert set(journaled) <= set(seen), seen


def test_a_journal_of_another_request_is_refused_and_the_right_rerun_finishes(tmp_path):
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2") as disk2:
        disks = Disks(tmp_path, disk1, disk2)
        steps = fork_run(disks.request)[1]
        expected = disks.state()
        for step in range(1, steps + 1):
            disks.restore()
            fork_run(disks.request, step)
            if journal_step(disks) == "place":
                break
        before = digest(disk1), digest(disk2)
        other = disks.fx.request([disks.dest, disks.fx.base + "/opt/conda/other"], migrate=True, link_old=True)
        with pytest.raises(RelocateError, match=r"holds the journal of an interrupted move .* \(stopped at step place\)"
                                                ".*run the task that started it again"):
            build_plan(other)
        with pytest.raises(RelocateError, match="it has link_old=True"):
            build_plan(disks.request(link_old=False))
        assert (digest(disk1), digest(disk2)) == before, "a refused journal changes nothing"
        plan = build_plan(disks.request())
        assert plan.changed and plan.as_dict()["recovery"]["action"] == "finish"
        apply(plan)
        assert disks.state() == expected


def test_a_journal_someone_else_wrote_is_never_adopted(tmp_path):
    """A journal names the move's source: one written by another uid (a user who can write the
    new cache's directory) could make the rerun remove anything.  Only the mover's own is trusted."""
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2") as disk2:
        disks = Disks(tmp_path, disk1, disk2)
        steps = fork_run(disks.request)[1]
        for step in range(1, steps + 1):
            disks.restore()
            fork_run(disks.request, step)
            if journal_step(disks) == "place":
                break
        staging = os.path.join(disks.dest, conda_relocate_move.STAGING)
        journal = os.path.join(staging, conda_relocate_move.JOURNAL)
        before = digest(disk1), digest(disk2)
        os.chown(staging, 4242, 4242)
        with pytest.raises(RelocateError, match="belongs to uid 4242, not to uid 0 who would make it"):
            build_plan(disks.request())
        os.chown(staging, 0, 0)
        os.chown(journal, 4242, 4242)
        with pytest.raises(RelocateError, match="was not written by uid 0: not trusted"):
            build_plan(disks.request())
        assert (digest(disk1), digest(disk2)) == before
        os.chown(journal, 0, 0)
        plan = build_plan(disks.request())
        assert plan.as_dict()["recovery"]["action"] == "finish"


def test_a_staging_dir_without_journal_is_removed_and_the_move_done(tmp_path):
    """Reproduction 5 as an older version left it: a partial copy in the staging dir, no journal."""
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2") as disk2:
        disks = Disks(tmp_path, disk1, disk2)
        fork_run(disks.request)
        expected = disks.state()
        disks.restore()
        os.makedirs(disks.dest + "/" + conda_relocate_move.STAGING + "/" + disks.names[0])
        for marker in ("urls", "urls.txt"):
            open(os.path.join(disks.dest, marker), "w").close()
        plan = build_plan(disks.request())
        assert plan.as_dict()["recovery"]["step"] is None
        apply(plan)
        assert disks.state()["condarc"] == expected["condarc"]
        assert sorted(os.listdir(disks.dest)) == sorted(os.path.basename(k) for k in expected["dest"] if "/" not in k)
