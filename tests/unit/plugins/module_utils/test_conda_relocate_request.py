# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rule a Request checks before anything moves: every pkgs_dirs entry is absolute once conda
has expanded it for the user whose view is checked (issue 13, reproduction 4).

The reference is conda's own expansion, ``abspath(expanduser(expandvars(path)))`` without the
``abspath``: the standard library's functions run with the viewer's environment as ``os.environ``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_relocate import RelocateError, Request, build_plan

ALICE = User("alice", 1001, 1001, "/home/alice")
PIECES = st.sampled_from(["/", "~", "~/", "$HOME", "${HOME}", "$DATA", "${DATA}", "$UNSET", "data", "pkgs", ".",
                          "..", " ", "$"])
ENTRIES = st.lists(PIECES, min_size=1, max_size=5).map("".join)
ENVS = st.fixed_dictionaries({"HOME": st.just(ALICE.home), "DATA": st.sampled_from(["/data", "data", ""])})


@contextlib.contextmanager
def environ(values):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def conda_expands_absolute(entry, env):
    with environ(env):
        return os.path.isabs(os.path.expanduser(os.path.expandvars(entry)))


def request(entries, env, state="present"):
    return Request("/opt/conda", "/home/alice/.condarc", ALICE, [ALICE], entries, state=state, env=env)


@given(ENTRIES, ENVS)
def test_an_entry_is_accepted_exactly_when_condas_expansion_is_absolute(entry, env):
    if conda_expands_absolute(entry, env):
        assert request([entry], env).pkgs_dirs == [entry]
    else:
        with pytest.raises(RelocateError, match="must be absolute paths.* for alice; refusing"):
            request([entry], env)


@given(st.lists(ENTRIES, min_size=1, max_size=3), ENVS)
def test_state_absent_may_name_relative_entries_to_take_them_out(entries, env):
    assert request(entries, env, state="absent").pkgs_dirs == entries


@pytest.mark.parametrize("entry", ["data/pkgs", "pkgs", "./pkgs", "", "$UNSET/pkgs", "~alice_typo/pkgs"])
def test_the_reproduction_and_its_cousins_are_refused_with_every_entry_named(entry):
    with pytest.raises(RelocateError) as caught:
        request(["/srv/pkgs", entry], {})
    assert str(caught.value).endswith("refusing %r" % entry)


@pytest.mark.parametrize("entry", ["/srv/pkgs", "~/pkgs", "~", "$HOME/pkgs", "${HOME}/pkgs", "$DATA/pkgs"])
def test_absolute_and_expanding_forms_are_accepted(entry):
    assert request([entry], {"DATA": "/data"}).pkgs_dirs == [entry]


def test_a_condarc_that_is_not_utf8_is_named_and_left_alone(tmp_path):
    root = tmp_path / "conda"
    (root / "conda-meta").mkdir(parents=True)
    (root / "conda-meta/history").write_text("")
    (root / "pkgs").mkdir()
    condarc = root / ".condarc"
    condarc.write_bytes(b"channels:\n  - caf\xe9\npkgs_dirs:\n  - /old\n")
    viewer = User("root", 0, 0, str(tmp_path / "home"))
    request = Request(str(root), str(condarc), viewer, [viewer], ["/srv/pkgs"])
    with pytest.raises(RelocateError, match="has bytes that are not UTF-8 .*; not edited"):
        build_plan(request)
    assert condarc.read_bytes() == b"channels:\n  - caf\xe9\npkgs_dirs:\n  - /old\n"
