# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests of the .condarc reader and editor (Hypothesis).

The oracle for "what conda reads back" is a real YAML parser (ruamel.yaml, what conda itself
loads configs with): after ``set_items`` it must read exactly the values written, our own reader
must agree with it, and every line outside the edited block must be the same.
"""

from __future__ import annotations

import io

from hypothesis import assume, given, settings, strategies as st
from ruamel.yaml import YAML

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_config
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_config_edit import (
    EditError, read_items, set_items)

# Path-like values with the characters that need care in YAML: spaces, quotes, colons, hashes.
SEGMENT = st.text(alphabet="abcXYZ019_-. :#'\"\\~$@!", min_size=1, max_size=12)
VALUE = st.lists(SEGMENT, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
VALUES = st.lists(VALUE, max_size=4, unique=True)
OTHER_KEYS = st.lists(st.sampled_from(["channels", "envs_dirs", "always_yes", "ssl_verify"]), unique=True, max_size=3)


def other_block(key):
    if key in ("channels", "envs_dirs"):
        return "%s:\n  - /x/%s  # keep me\n" % (key, key)
    return "%s: true\n" % key


def written(value, style):
    """A value as a person may write it: single-quoted (``''`` for a quote) or double-quoted
    (backslash escapes)."""
    if style == "single":
        return "'%s'" % value.replace("'", "''")
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


@st.composite
def condarc(draw):
    """A config with other keys, comments and (maybe) a pkgs_dirs block of its own."""
    keys = draw(OTHER_KEYS)
    blocks = ["# header comment\n"] + [other_block(k) for k in keys]
    current = draw(st.none() | VALUES)
    if current is not None:
        text = "pkgs_dirs:%s\n" % draw(st.sampled_from(["", "  #!final"]))
        styles = draw(st.lists(st.sampled_from(["single", "double"]), min_size=len(current), max_size=len(current)))
        text += "".join("  - %s\n" % written(v, style) for v, style in zip(current, styles))
        blocks.insert(draw(st.integers(0, len(blocks))), text if current else "pkgs_dirs: []\n")
    return "".join(blocks)


def yaml_pkgs_dirs(text):
    data = YAML(typ="safe").load(io.StringIO(text)) or {}
    return data.get("pkgs_dirs")


def outside_block(text):
    """The lines that are not the pkgs_dirs key or its items."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("pkgs_dirs:"):
            inside = True
            continue
        if inside and (line.startswith(" ") or line.startswith("-")):
            continue
        inside = False
        lines.append(line)
    return lines


@settings(max_examples=300, deadline=None)
@given(text=condarc(), values=st.lists(VALUE, min_size=1, max_size=4, unique=True))
def test_what_is_written_is_what_yaml_and_our_reader_read_back_and_nothing_else_moves(text, values):
    try:
        edited = set_items(text, values)
    except EditError as exc:
        # Only a value YAML cannot hold in one plain or quoted scalar may be refused.
        assert "cannot write" in str(exc) and any("'" in v and '"' in v for v in values), exc
        return
    assert yaml_pkgs_dirs(edited) == values
    assert read_items(edited) == values
    parsed = conda_config.parse_condarc(edited, keys={"pkgs_dirs"})["pkgs_dirs"]
    assert [v for v, _mark in parsed.items] == values
    assert [l for l in outside_block(edited) if l.strip()] == [l for l in outside_block(text) if l.strip()]


@settings(max_examples=200, deadline=None)
@given(text=condarc())
def test_our_reader_agrees_with_yaml_on_what_it_accepts(text):
    ours = conda_config.parse_condarc(text, keys={"pkgs_dirs"}).get("pkgs_dirs")
    theirs = yaml_pkgs_dirs(text)
    assert (None if ours is None else [v for v, _m in ours.items]) == theirs


@settings(max_examples=200, deadline=None)
@given(text=condarc())
def test_removing_the_key_leaves_every_other_line(text):
    assume("pkgs_dirs" in text)
    edited = set_items(text, None)
    assert read_items(edited) is None and yaml_pkgs_dirs(edited) is None
    assert [l for l in outside_block(edited) if l.strip()] == [l for l in outside_block(text) if l.strip()]
