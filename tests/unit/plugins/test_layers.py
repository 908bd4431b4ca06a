# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layering rule of README's layout section, checked on the import graph of plugins/.

Ground floor (``module_utils/_*.py``) knows nothing of conda or pip; the shared layer (the option
vocabulary and the cleanup pipeline) builds on it; domain models build on both; an operation
imports models and its own operation's files, never another operation's; modules import the
domain, the shared layer and ``_text`` (their one way out); so does the local command.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
UTILS = PLUGINS / "module_utils"
PREFIX = "ansible_collections.pkgcache.fleet.plugins.module_utils"

SHARED = {"options", "cleanup", "self_clean"}
MODELS = {"conda_model", "conda_config", "conda_config_edit", "conda_cache", "conda_host", "conda_mamba", "conda_envs",
          "conda_integrity", "conda_backup_store", "pip_cache", "rattler_cache"}
OPERATIONS = {
    "clean": {"conda_clean", "pip_clean", "uv_clean", "rattler_clean", "cache_clean"},
    "relocate": {"conda_relocate", "conda_relocate_move", "pip_relocate"},
    "backup": {"conda_backup", "conda_backup_restore", "conda_backup_envs", "conda_channel"},
    "repair": {"conda_repair"},
    "facts": {"conda_facts", "facts"},
    "metrics": {"metrics"},
    "shared cache": {"shared_cache"},
}
MODULE_MAY_USE_GROUND = {"_text"}
# Entry points in module_utils (the local command): like modules, they sit on top of everything.
ENTRY_POINTS = {"local_command"}


def utils_imports(path: Path):
    """Names of module_utils files that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PREFIX:
                found.update(alias.name for alias in node.names)
            elif node.module.startswith(PREFIX + "."):
                found.add(node.module[len(PREFIX) + 1:].split(".")[0])
    return found


def layer(name):
    if name in ENTRY_POINTS:
        return "entry"
    if name.startswith("_"):
        return "ground"
    if name in SHARED:
        return "shared"
    if name in MODELS:
        return "model"
    for operation, names in OPERATIONS.items():
        if name in names:
            return operation
    return None


def test_every_module_utils_file_has_a_layer():
    assert [p.stem for p in UTILS.glob("*.py") if layer(p.stem) is None and p.stem != "__init__"] == []


@pytest.mark.parametrize("path", sorted(UTILS.glob("*.py")), ids=lambda p: p.name)
def test_module_utils_files_import_only_downwards(path):
    mine = layer(path.stem)
    for name in utils_imports(path):
        theirs = layer(name)
        if mine == "entry":
            assert theirs != "ground" or name in MODULE_MAY_USE_GROUND, "%s imports the ground floor's %s" % (
                path.name, name)
        elif mine == "ground":
            assert theirs == "ground", "%s (ground floor) imports %s" % (path.name, name)
        elif mine == "shared":
            assert theirs in ("ground", "shared"), "%s (shared) imports %s" % (path.name, name)
        elif mine == "model":
            assert theirs in ("ground", "shared", "model"), "%s (model) imports %s" % (path.name, name)
        else:
            assert theirs in ("ground", "shared", "model", mine), (
                "%s (%s) imports %s of another operation (%s)" % (path.name, mine, name, theirs))


def test_ground_floor_knows_nothing_of_conda_or_pip():
    for path in UTILS.glob("_*.py"):
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        tree = ast.parse(code)
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not [n for n in names if "conda" in n.lower() or n.lower() in ("pip", "uv") or n.lower().startswith(
            ("pip_", "uv_"))], path.name


@pytest.mark.parametrize("path", sorted((PLUGINS / "modules").glob("*.py")), ids=lambda p: p.name)
def test_modules_import_the_domain_the_shared_layer_and_their_way_out(path):
    for name in utils_imports(path):
        assert layer(name) != "ground" or name in MODULE_MAY_USE_GROUND, "%s imports the ground floor's %s" % (
            path.name, name)
