# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda config resolution: search path, list merge, #!final and variables, against real files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_config


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    return path


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "opt" / "conda"
    home = tmp_path / "home" / "alice"
    (root / "conda-meta").mkdir(parents=True)
    home.mkdir(parents=True)
    return str(root), str(home)


def test_block_flow_and_comments_parse():
    parsed = conda_config.parse_condarc(
        "# site config\n"
        "channels:\n  - conda-forge\n  - defaults\n"
        "custom_channels:\n  mine: https://example.invalid\n"
        "pkgs_dirs: #!final\n  - /data/pkgs   # big disk\n  - '~/.conda/pkgs'\n"
        "envs_dirs: [/a, \"/b\"]\n"
        "always_yes: true\n",
        source="x",
    )
    pkgs = parsed["pkgs_dirs"]
    assert pkgs.final is True
    assert [v for v, _m in pkgs.items] == ["/data/pkgs", "~/.conda/pkgs"]
    assert [v for v, _m in parsed["envs_dirs"].items] == ["/a", "/b"]
    assert parsed["channels"] is None


@pytest.mark.parametrize("text, message", [
    ("pkgs_dirs:\n  - '/unterminated\n", "unterminated"),
    ("pkgs_dirs: [/a, /b\n", "flow sequence"),
    ("just some words\n", "key: value"),
    ("pkgs_dirs:\n\t- /a\n", "tab"),
    ("pkgs_dirs: [/a]\npkgs_dirs: [/b]\n", "duplicate"),
    ("pkgs_dirs:\n  not-an-item\n", "item"),
])
def test_malformed_names_file_and_line(text, message):
    with pytest.raises(conda_config.CondarcError) as info:
        conda_config.parse_condarc(text, source="/etc/conda/.condarc")
    assert "/etc/conda/.condarc:" in str(info.value)
    assert message in str(info.value)


def test_defaults_when_nothing_is_configured(layout):
    root, home = layout
    config = conda_config.resolve(root, home, env={})
    assert config.pkgs_dirs == [root + "/pkgs", home + "/.conda/pkgs"]
    assert config.envs_dirs == [root + "/envs", home + "/.conda/envs"]
    assert config.sources == []


def test_envs_dirs_reversed_when_root_not_writable(layout):
    root, home = layout
    config = conda_config.resolve(root, home, env={}, root_writable=False)
    assert config.envs_dirs == [home + "/.conda/envs", root + "/envs"]


def test_later_files_come_first_and_duplicates_keep_first_place(layout):
    root, home = layout
    write(root + "/.condarc", "pkgs_dirs:\n  - /shared/pkgs\n  - /common\n")
    write(home + "/.condarc", "pkgs_dirs:\n  - ~/fast/pkgs\n  - /common\n")
    config = conda_config.resolve(root, home, env={})
    assert config.pkgs_dirs == [home + "/fast/pkgs", "/common", "/shared/pkgs"]
    assert config.sources == [root + "/.condarc", home + "/.condarc"]


def test_final_stops_lower_precedence_files_and_variables(layout):
    root, home = layout
    write(root + "/.condarc", "pkgs_dirs: #!final\n  - /locked/pkgs\n")
    write(home + "/.condarc", "pkgs_dirs:\n  - /mine\n")
    config = conda_config.resolve(root, home, env={"CONDA_PKGS_DIRS": "/from/env"})
    assert config.pkgs_dirs == ["/locked/pkgs"]
    assert config.sources == [root + "/.condarc"]


def test_condarc_d_and_xdg_and_variables(layout, tmp_path):
    root, home = layout
    xdg = str(tmp_path / "xdg")
    write(root + "/condarc.d/20-b.yml", "pkgs_dirs: [/b]\n")
    write(root + "/condarc.d/10-a.yaml", "pkgs_dirs: [/a]\n")
    write(root + "/condarc.d/ignored.txt", "pkgs_dirs: [/nope]\n")
    write(xdg + "/conda/condarc", "envs_dirs:\n  - $HOME/envs\n")
    config = conda_config.resolve(root, home, env={
        "XDG_CONFIG_HOME": xdg,
        "CONDA_PKGS_DIRS": "/e1,/e2",
        "CONDA_ENVS_PATH": "/p1:/p2",
    })
    assert config.pkgs_dirs == ["/e1", "/e2", "/b", "/a"]
    assert config.envs_dirs[:3] == ["/p1", "/p2", home + "/envs"]
    assert "$CONDA_PKGS_DIRS" in config.sources


def test_top_and_bottom_markers(layout):
    root, home = layout
    write(root + "/.condarc", "pkgs_dirs:\n  - /sys-top  #!top\n  - /sys\n")
    write(home + "/.condarc", "pkgs_dirs:\n  - /user-bottom  #!bottom\n  - /user\n")
    config = conda_config.resolve(root, home, env={})
    assert config.pkgs_dirs == ["/sys-top", "/user", "/sys", "/user-bottom"]


def test_malformed_file_is_a_warning_and_others_still_count(layout):
    root, home = layout
    write(root + "/.condarc", "pkgs_dirs: [/broken\n")
    write(home + "/.condarc", "pkgs_dirs: [/ok]\n")
    config = conda_config.resolve(root, home, env={})
    assert config.pkgs_dirs == ["/ok"]
    assert len(config.warnings) == 1 and root + "/.condarc:1" in config.warnings[0]


def test_scalar_where_a_list_belongs_is_a_warning(layout):
    root, home = layout
    write(home + "/.condarc", "pkgs_dirs: /not/a/list\n")
    config = conda_config.resolve(root, home, env={})
    assert config.pkgs_dirs == [root + "/pkgs", home + "/.conda/pkgs"]
    assert "must be a list" in config.warnings[0]
