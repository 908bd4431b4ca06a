# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bytes in, escaped text out: names that are not UTF-8 are read, planned, removed and reported.

The escaping is checked as a property (every string becomes valid UTF-8, and ``raw`` gives back
exactly what ``printable`` was given); real fixture hosts with such names on disk then go through
facts and a clean plan, and every path the plan names must lead back to the bytes on disk.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil

import pytest
from ansible.module_utils.common.text.formatters import bytes_to_human
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from condafab.layouts import DEFAULT_USERS, LAYOUTS, ROOT_USER

from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes, printable, printable_tree, raw
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_clean import TARGETS, Policy, clean
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_facts import gather
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host

from .hostroot import host_users, in_root, require_root

USERS = [ROOT_USER] + list(DEFAULT_USERS)
# Any code point, lone surrogates included: what os.fsdecode and json.loads can hand over.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()))
# File names: any bytes but '/' and NUL, usually with some that are not UTF-8.
NAMES = st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b)


def valid_utf8(text):
    text.encode("utf-8")
    return True


def test_examples_of_the_documented_escaping():
    assert printable(os.fsdecode(b"/pkgs/caf\xe9-1.0")) == "/pkgs/caf\\xe9-1.0"
    assert printable("/pkgs/caf\u00e9-1.0") == "/pkgs/caf\u00e9-1.0"
    assert printable("a\\xe9") == "a\\\\xe9"
    assert printable("\ud800") == "\\ud800"
    assert printable("/plain/path") == "/plain/path"


@given(ANY_TEXT)
def test_printable_is_valid_utf8_and_raw_reverses_it(text):
    shown = printable(text)
    assert valid_utf8(shown)
    assert raw(shown) == text


@given(ANY_TEXT, ANY_TEXT)
def test_two_different_strings_never_print_the_same(one, other):
    if one != other:
        assert printable(one) != printable(other)


@given(st.binary(max_size=40))
def test_any_file_name_bytes_come_back_from_their_printable_form(name):
    assert os.fsencode(raw(printable(os.fsdecode(name)))) == name


@given(st.recursive(ANY_TEXT | st.integers() | st.booleans() | st.none(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3)))
def test_a_whole_result_serialises_as_valid_utf8(result):
    text = json.dumps(printable_tree(result), ensure_ascii=False)
    assert valid_utf8(text)


@pytest.fixture(scope="module")
def single_root(tmp_path_factory):
    require_root()
    fsroot = tmp_path_factory.mktemp("text") / "host"
    LAYOUTS["single_root"](fsroot, 3, list(DEFAULT_USERS))
    return fsroot


def facts_plan_and_clean(users):
    facts = gather(users)
    plan = clean(Host.load(users), set(TARGETS), Policy(), check_mode=True)
    done = clean(Host.load(users), set(TARGETS), Policy())
    return {"facts": facts, "plan": plan, "done": done}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(NAMES, min_size=1, max_size=4, unique=True))
def test_non_utf8_names_go_through_facts_plan_and_removal_and_print_back_to_the_bytes(single_root, names):
    pkgs = os.fsencode(str(single_root / "opt/conda/pkgs"))
    made = []
    try:
        for i, name in enumerate(names):
            tarball = pkgs + b"/x" + name + b"-1.0-%d.tar.bz2" % i
            extracted = pkgs + b"/x" + name + b"-1.0-%d" % i
            os.makedirs(extracted + b"/info")
            with open(extracted + b"/info/index.json", "wb") as handle:
                handle.write(b"{}")
            with open(extracted + b"/f" + name, "wb") as handle:
                handle.write(b"y")
            with open(tarball, "wb") as handle:
                handle.write(b"x" * 10)
            made += [tarball, extracted]
        result = printable_tree(in_root(single_root, facts_plan_and_clean, host_users(USERS)))
        assert valid_utf8(json.dumps(result, ensure_ascii=False))
        planned = [item["path"] for cache in result["plan"]["plan"] for item in cache["remove"]]
        unused = [p["path"] for c in result["facts"]["caches"] for p in c.get("unused_packages", [])]
        expected = set(b"/" + os.path.relpath(m, os.fsencode(str(single_root))) for m in made)
        assert expected <= set(os.fsencode(raw(p)) for p in planned)
        assert set(m for m in expected if not m.endswith(b".tar.bz2")) <= set(os.fsencode(raw(p)) for p in unused)
        assert result["facts"]["warnings"] == []
        assert expected <= set(os.fsencode(raw(p)) for p in result["done"]["removed"])
        assert result["done"]["errors"] == []
        assert not [m for m in made if os.path.lexists(m)], "removed by their raw bytes"
    finally:
        for path in made:
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)


def write_bytes(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_bytes_in_configs_lists_and_records_are_warnings_naming_the_file_never_a_crash(tmp_path):
    require_root()
    fsroot = tmp_path / "host"
    manifest = LAYOUTS["single_root"](fsroot, 3, list(DEFAULT_USERS))
    alice = fsroot / "home/alice"
    # environments.txt lists a prefix whose name is not UTF-8: it is read, kept, and noted.
    write_bytes(alice / ".conda/environments.txt", b"/home/alice/env\xff\n")
    env = fsroot / os.fsdecode(b"home/alice/env\xff")
    web = manifest.env("/opt/conda/envs/web")
    dist = web.packages[0]
    (env / "conda-meta").mkdir(parents=True)
    (env / "conda-meta/history").write_text("")
    # Its record names the package through a path with a raw byte in it (the env's own prefix).
    record = {"link": {"type": 2, "source": "/opt/conda/pkgs/" + dist}, "prefix": "/home/alice/env\xff"}
    write_bytes(env / "conda-meta" / (dist + ".json"),
                json.dumps(record).replace("\\u00ff", "\xff").encode("latin-1"))
    facts = in_root(fsroot, gather, host_users(USERS))
    assert "/home/alice/.conda/environments.txt: lines that are not UTF-8, read as raw bytes" in facts["warnings"]
    assert "/home/alice/env\udcff" in [e["path"] for e in facts["environments"]]
    assert not [w for w in facts["warnings"] if "corrupt PrefixRecord" in w], "the record was read, bytes and all"
    users = host_users(USERS)
    plan = in_root(fsroot, lambda: clean(Host.load(users), set(TARGETS), Policy(), check_mode=True))
    assert plan["changed"], "a noted byte in environments.txt does not stop cleanup"
    # A .condarc with such a byte is read (its dirs are real) but, as conda refuses it, alice's view
    # is not fully known: the clean goes on restricted (no extracted package), it is not stopped.
    write_bytes(alice / ".condarc", b"envs_dirs:\n  - /home/alice/\xfe\n")
    facts = in_root(fsroot, gather, host_users(USERS))
    assert any(w.startswith("/home/alice/.condarc: bytes that are not UTF-8") for w in facts["warnings"])
    plan = in_root(fsroot, lambda: clean(Host.load(users), set(TARGETS), Policy(), check_mode=True))
    assert "the conda config of alice cannot be read" in plan["restricted"]
    assert not [i for c in plan["caches"] for i in c["remove"] if i["category"] == "unused"]


@given(st.integers(min_value=0, max_value=1024 ** 5 - 1))
def test_human_bytes_picks_the_unit_ansible_core_picks_and_names_it_in_binary_units(count):
    """ansible-core's bytes_to_human writes 1536 as "1.50 KB" (a binary multiple with a decimal
    name); ours, stdlib for the local command, writes "1.5 KiB": same unit and value, IEC name."""
    number, unit = human_bytes(count).split()
    theirs, their_unit = bytes_to_human(count).split()
    assert unit == ("B" if their_unit == "Bytes" else their_unit[0] + "iB")
    assert abs(float(number) - float(theirs)) <= (0 if unit == "B" else 0.0501)
