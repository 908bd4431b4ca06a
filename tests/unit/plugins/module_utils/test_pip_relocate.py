# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pip_relocate: the one-key edits of pip.conf, uv.toml and environment files, and a pip cache
moved across two filesystems, SIGKILLed before each of its filesystem changes and finished by
the rerun (conda's kill harness, conda's mover)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import configparser
import os
import signal

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_relocate_move import STEPS, Journal
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_relocate import (
    EditError, EnvLine, IniKey, RelocateError, Request, TomlKey, apply, build_plan)

from .killpoints import forked, kill_before
from .test_conda_relocate import tmpfs
from .test_conda_relocate_kill import _FS_CALLS, digest, entry_digest

PIP_CONF = "# mine\n[global]\ntimeout = 5\n\n[install]\n; keep this\nno-compile = yes\n"


def test_ini_edit_keeps_every_other_line_and_reads_back():
    edit = IniKey("pip.conf")
    after = edit.write(PIP_CONF, "/data/pip")
    assert after == "# mine\n[global]\ncache-dir = /data/pip\ntimeout = 5\n\n[install]\n; keep this\nno-compile = yes\n"
    assert edit.read(after) == "/data/pip"
    assert edit.write(after, "/data/pip") == after
    assert edit.write(after, None) == PIP_CONF
    assert edit.write("", "/x") == "[global]\ncache-dir = /x\n"
    spelled = "[global]\nCache_Dir = /old\n  continued\n[install]\ncache-dir = /other\n"
    assert edit.write(spelled, "/new") == "[global]\ncache-dir = /new\n[install]\ncache-dir = /other\n"


def test_ini_edit_refuses_a_file_pip_cannot_read():
    with pytest.raises(EditError, match="pip cannot read it"):
        IniKey("pip.conf").write("[global]\ntimeout = 1\ntimeout = 2\n", "/x")


_NAMES = st.sampled_from(["timeout", "index-url", "no-compile", "retries", "trusted-host"])
_VALUES = st.text(alphabet="abc/:.-_ 0123456789", min_size=1, max_size=12).map(str.strip).filter(bool)
_SECTIONS = st.lists(st.tuples(st.sampled_from(["global", "install", "download", "wheel"]),
                               st.dictionaries(_NAMES, _VALUES, max_size=3),
                               st.sampled_from(["", "# a comment\n", "; another\n\n"])),
                     max_size=4, unique_by=lambda section: section[0])


@settings(max_examples=200, deadline=None)
@given(_SECTIONS, st.sampled_from(["/data/pip", "/srv/cache dir"]))
def test_ini_set_then_unset_changes_only_the_key(sections, value):
    text = "".join("%s[%s]\n%s" % (comment, name, "".join("%s = %s\n" % kv for kv in sorted(items.items())))
                   for name, items, comment in sections)
    edit = IniKey("pip.conf")
    after = edit.write(text, value)
    parser = configparser.RawConfigParser()
    parser.read_string(after)
    assert parser.get("global", "cache-dir") == value
    if any(name == "global" for name, _items, _comment in sections):
        assert [line for line in after.splitlines(True) if line != "cache-dir = %s\n" % value] == text.splitlines(True)
        assert edit.write(after, None) == text
    else:
        added = ("\n" if text else "") + "[global]\n"
        assert after == text + added + "cache-dir = %s\n" % value
        assert edit.write(after, None) == text + added


def test_toml_edit_puts_the_key_before_the_first_table():
    text = '# uv\nnative-tls = true\n\n[pip]\nindex-url = "x"\n'
    after = TomlKey("uv.toml").write(text, "/data/uv")
    assert after == '# uv\nnative-tls = true\n\ncache-dir = "/data/uv"\n[pip]\nindex-url = "x"\n'
    assert TomlKey("uv.toml").read(after) == "/data/uv"
    assert TomlKey("uv.toml").write(after, None) == text
    with pytest.raises(EditError, match="not TOML"):
        TomlKey("uv.toml").write("cache-dir = \n", "/x")


def test_environment_file_edit_keeps_other_lines_and_drops_later_duplicates():
    text = 'PATH="/usr/bin"\nPIP_CACHE_DIR=/a\n# note\nPIP_CACHE_DIR=/b\n'
    edit = EnvLine("/etc/environment", "PIP_CACHE_DIR")
    assert edit.read(text) == "/b"
    after = edit.write(text, "/data/pip")
    assert after == 'PATH="/usr/bin"\nPIP_CACHE_DIR="/data/pip"\n# note\n'
    assert EnvLine("/etc/profile.d/pip.sh", "PIP_CACHE_DIR").write("", "/x") == 'export PIP_CACHE_DIR="/x"\n'
    with pytest.raises(EditError, match="quotes"):
        edit.write(text, "/a'b")


# -- a move killed at every step ------------------------------------------------------------------


class Host(object):
    """A user's home with a pip cache and pip.conf on one tmpfs, the new cache's disk another."""

    def __init__(self, disk1, disk2):
        self.home = os.path.join(disk1, "home")
        self.old = os.path.join(self.home, ".cache", "pip")
        self.conf = os.path.join(self.home, ".config", "pip", "pip.conf")
        self.dest = os.path.join(disk2, "pip-cache")
        self.disk1, self.disk2 = disk1, disk2
        self.user = User("someone", os.geteuid(), os.getegid(), self.home)

    def build(self):
        for path, size in (("wheels/ab/cd/demo-1.0-py3-none-any.whl", 70000), ("http-v2/a/b/c/d/e/key", 300),
                           ("http-v2/a/b/c/d/e/key.body", 50000), ("selfcheck/x.json", 40)):
            full = os.path.join(self.old, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as handle:
                handle.write(os.urandom(size))
        os.link(os.path.join(self.old, "http-v2/a/b/c/d/e/key.body"), os.path.join(self.old, "http-v2/a/twin"))
        os.makedirs(os.path.dirname(self.conf))
        with open(self.conf, "w") as handle:
            handle.write(PIP_CONF)
        self.entries = dict((n, entry_digest(os.path.join(self.old, n))) for n in os.listdir(self.old))

    def wipe(self):
        for disk in (self.disk1, self.disk2):
            for name in os.listdir(disk):
                os.system("rm -rf '%s'" % os.path.join(disk, name))

    def request(self):
        return Request("pip", "user", self.user, [(self.user.uid, self.home)], self.dest, migrate=True)

    def state(self):
        return {"dest": digest(self.dest), "conf": open(self.conf).read(), "old": os.path.lexists(self.old)}


def _run(host, step, report_fd):
    status = 1
    try:
        calls = kill_before(step, _FS_CALLS)
        apply(build_plan(host.request()))
        if report_fd is not None:
            os.write(report_fd, str(calls[0]).encode())
        status = 0
    finally:
        os._exit(status)  # pylint: disable=protected-access


def test_a_pip_cache_move_killed_at_every_step_is_finished_by_the_rerun(tmp_path):
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2") as disk2:
        host = Host(disk1, disk2)
        host.build()
        status, steps = forked(lambda fd: _run(host, None, fd))
        assert status == 0 and steps > 15, (status, steps)
        expected = host.state()
        new_conf = expected["conf"]
        assert new_conf == PIP_CONF.replace("[global]\n", "[global]\ncache-dir = %s\n" % host.dest)
        assert sorted(expected["dest"]) and not expected["old"]
        seen = set()
        for step in range(1, steps + 1):
            host.wipe()
            host.build()
            golden_now = dict((n, entry_digest(os.path.join(host.old, n))) for n in host.entries)
            status = forked(lambda fd: _run(host, step, None))[0]
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, step
            journal = Journal.find(host.dest, os.geteuid()) if os.path.isdir(host.dest) else None
            seen.add(journal.step if journal is not None else None)
            text = open(host.conf).read()
            assert text in (PIP_CONF, new_conf), step
            in_use = host.dest if text == new_conf else host.old
            for name, content in golden_now.items():
                assert entry_digest(os.path.join(in_use, name)) == content, (step, name, in_use)
            assert forked(lambda fd: _run(host, None, None))[0] == 0, "rerun after a kill at step %d" % step
            got = host.state()
            assert got["conf"] == new_conf and got["old"] is False, step
            assert dict((n, entry_digest(os.path.join(host.dest, n))) for n in host.entries) == golden_now, step
            assert sorted(got["dest"]) == sorted(expected["dest"]), step
            assert not build_plan(host.request()).changed, step
        print("\n%d filesystem steps, kills landed in journal steps %s" % (steps, sorted(seen, key=str)))
        assert set(STEPS) <= seen, seen


def test_a_cache_of_another_user_is_not_moved_on_a_users_word(tmp_path):
    """Root runs for alice: her pip.conf cannot hand root's cache over to her."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    home = str(tmp_path / "home")
    os.makedirs(home + "/.cache/pip/wheels")
    os.makedirs(home + "/.config/pip")
    os.chown(home, 4242, 4242)
    os.chown(home + "/.config", 4242, 4242)
    os.chown(home + "/.config/pip", 4242, 4242)
    user = User("alice", 4242, 4242, home)
    request = Request("pip", "user", user, [(4242, home)], str(tmp_path / "new"), migrate=True)
    with pytest.raises(RelocateError, match="owned by root but named only by|is root's cache|not moving it"):
        build_plan(request)


def test_link_old_keeps_the_old_path_as_a_link_to_the_moved_cache(tmp_path):
    """Same filesystem: a rename, the old path left as a symlink; state=absent then takes the
    setting out and moves nothing (the default path already leads to the content)."""
    host = Host(str(tmp_path / "d1"), str(tmp_path / "d2"))
    os.makedirs(host.disk1)
    os.makedirs(host.disk2)
    host.build()
    user = host.user
    request = Request("pip", "user", user, [(user.uid, host.home)], host.dest, migrate=True, link_old=True)
    plan = build_plan(request)
    assert plan.move.method == "rename" and plan.as_dict()["cache_dir"] == host.dest
    apply(plan)
    assert os.readlink(host.old) == host.dest
    assert dict((n, entry_digest(os.path.join(host.dest, n))) for n in host.entries) == host.entries
    assert not build_plan(request).changed
    back = build_plan(Request("pip", "user", user, [(user.uid, host.home)], None, "absent", migrate=True))
    assert back.move is None and back.as_dict()["cache_dir"] == host.old
    apply(back)
    assert open(host.conf).read() == PIP_CONF
