# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The line-preserving .condarc editor: only pkgs_dirs changes, conda's reader agrees (its atomic
write is _durable's, tested in test_durable)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_config
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_config_edit import EditError, quote, read_items, set_items

SITE = (
    "# site config, owned by ops\n"
    "channels:\n"
    "  - conda-forge  # primary\n"
    "  - defaults\n"
    "pkgs_dirs:  #!final\n"
    "  # the big disk\n"
    "  - /data/pkgs   # fast\n"
    "  - ~/.conda/pkgs #!bottom\n"
    "\n"
    "# proxies below\n"
    "proxy_servers:\n"
    "  http: http://proxy.invalid:3128\n"
    "always_yes: true\n"
)


def without_block(text):
    """Every line outside the pkgs_dirs block, in order."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("pkgs_dirs:"):
            inside = True
            continue
        if inside and (line.startswith(" ") or not line.strip()):
            if line.strip().startswith("#"):
                lines.append(line.strip())
            continue
        inside = False
        lines.append(line)
    return lines


def test_only_the_key_changes_and_markers_and_comments_survive():
    edited = set_items(SITE, ["/scratch/pkgs", "/data/pkgs"])
    assert without_block(edited) == without_block(SITE)
    assert "pkgs_dirs:  #!final\n" in edited
    assert "  - /data/pkgs   # fast\n" in edited
    assert "# the big disk" in edited
    parsed = conda_config.parse_condarc(edited)
    assert parsed["pkgs_dirs"].final is True
    assert parsed["pkgs_dirs"].items == [("/scratch/pkgs", None), ("/data/pkgs", None)]


def test_comments_of_removed_items_stay_in_the_file():
    edited = set_items(SITE, ["/elsewhere"])
    assert "# the big disk" in edited
    assert "/data/pkgs" not in edited
    assert read_items(edited) == ["/elsewhere"]


def test_a_missing_key_is_appended_even_without_final_newline():
    edited = set_items("channels:\n  - conda-forge", ["/data/pkgs"])
    assert edited == "channels:\n  - conda-forge\npkgs_dirs:\n  - /data/pkgs\n"


def test_removing_the_key_leaves_the_rest_byte_for_byte():
    text = "channels: [a]\npkgs_dirs:\n  - /x\n  - /y\nalways_yes: true\n"
    assert set_items(text, None) == "channels: [a]\nalways_yes: true\n"
    assert read_items(set_items(text, None)) is None


def test_flow_style_keeps_its_comment_and_following_keys():
    edited = set_items("pkgs_dirs: [/a, /b]  # old\nenvs_dirs: [/e]\n", ["/b"])
    assert edited == "pkgs_dirs:  # old\n  - /b\nenvs_dirs: [/e]\n"


def test_item_indentation_of_the_file_is_reused():
    edited = set_items("pkgs_dirs:\n- /a\nx: 1\n", ["/a", "/b"])
    assert edited == "pkgs_dirs:\n- /a\n- /b\nx: 1\n"


@pytest.mark.parametrize("value", [
    "/plain/path", "~/.conda/pkgs", "$HOME/pkgs", "/with space", "/hash #x", "/colon: x",
    "- dash", "#start", "/it's", "[bracket", "yes", "~",
])
def test_any_path_reads_back_unchanged(value):
    edited = set_items("", [value])
    assert read_items(edited) == [value]
    assert [v for v, _m in conda_config.parse_condarc(edited)["pkgs_dirs"].items] == [value]


def test_a_value_with_both_quote_kinds_is_refused():
    with pytest.raises(EditError):
        quote("/it's \"odd\"")


def test_a_malformed_file_is_not_edited():
    with pytest.raises(EditError, match="malformed"):
        set_items("pkgs_dirs: [unclosed\n", ["/a"], source="/etc/conda/.condarc")
