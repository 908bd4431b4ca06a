"""The shared options refuse bad input the same way in every module, before anything is read or
changed: each module file run as Ansible runs it (a process with an args file) on a condafab
installation and pip cache in a temp dir.

Every refusal is paired with the same run minus the bad value, in check mode, which succeeds and
would change something: the refusal, not the fixture, is what left the tree alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from condafab.pipcache import build_pip_cache, snapshot

from .test_conda_pkgs_backup import host  # noqa: F401  pylint: disable=unused-import

LINK = Path(__file__).resolve().parents[4] / ".build" / "link"
MODULES = LINK / "ansible_collections/pkgcache/fleet/plugins/modules"
UNKNOWN = ["nobody-by-that-name", "nor-this-one"]
UNKNOWN_MSG = "unknown user(s): nobody-by-that-name, nor-this-one (not in the passwd database)"


def run(tmp_path: Path, module: str, args: dict, check_mode=False) -> dict:
    args_file = tmp_path / "args" / (module + ".json")
    args_file.parent.mkdir(exist_ok=True)
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check_mode)}))
    env = dict(os.environ, PYTHONPATH=str(LINK), ANSIBLE_COLLECTIONS_PATH=str(LINK))
    done = subprocess.run([sys.executable, str(MODULES / (module + ".py")), str(args_file)], env=env,
                          capture_output=True, text=True, check=False)
    return json.loads(done.stdout)


@pytest.fixture
def fixture(tmp_path, host):
    """conda_pkgs_backup's installation (its cache holds unused packages) and empty backup
    directory, and a pip cache."""
    build_pip_cache(tmp_path / "pip", seed=5, wheels=3)
    return dict(host, environment={"PIP_CACHE_DIR": str(tmp_path / "pip"), "UV_CACHE_DIR": str(tmp_path / "no-uv"),
                                   "PIP_CONFIG_FILE": os.devnull})


def state(tmp_path):
    return [snapshot(tmp_path / part) for part in ("host", "pip", "backup")]


# Each module with arguments under which it reads the fixture and, for the mutating ones, would
# change it.
RUNS = {
    "conda_cache_facts": lambda f: {"roots": [f["root"]]},
    "conda_env_facts": lambda f: {"roots": [f["root"]], "mode": "full"},
    "pip_cache_facts": lambda f: {"environment": f["environment"]},
    "cache_facts": lambda f: {"roots": [f["root"]], "environment": f["environment"]},
    "conda_clean": lambda f: {"roots": [f["root"]], "pkgs_dirs": [f["cache"]], "targets": ["tarballs"]},
    "pip_cache_clean": lambda f: {"environment": f["environment"], "purge": True},
    "conda_pkgs_backup": lambda f: {"dest": f["dest"], "roots": [f["root"]], "host_id": "h1"},
    # The fixture's caches are sound: nothing to repair, so it changes nothing even when accepted.
    "conda_cache_repair": lambda f: {"roots": [f["root"]], "pkgs_dirs": [f["cache"]], "mode": "full"},
    "cache_clean": lambda f: {"kinds": ["conda", "pip"], "environment": f["environment"], "pip": {"purge": True},
                              "conda": {"roots": [f["root"]], "pkgs_dirs": [f["cache"]], "targets": ["tarballs"]}},
}
MUTATING = ("conda_clean", "pip_cache_clean", "conda_pkgs_backup", "cache_clean")


def warnings_of(result: dict) -> list:
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


@pytest.mark.parametrize("module", sorted(RUNS))
def test_unknown_users_are_named_in_an_error_before_anything_is_read(tmp_path, fixture, module):
    args = RUNS[module](fixture)
    before = state(tmp_path)
    refused = run(tmp_path, module, dict(args, users=["root"] + UNKNOWN))
    assert refused.get("failed") is True and refused["msg"] == UNKNOWN_MSG, refused
    assert warnings_of(refused) == [] and "ansible_facts" not in refused
    assert state(tmp_path) == before

    accepted = run(tmp_path, module, dict(args, users=["root"]), check_mode=True)
    assert accepted.get("failed") is not True, accepted
    assert accepted["changed"] is (module in MUTATING)


@pytest.mark.parametrize("option", ["user", "owner", "group"])
def test_conda_pkgs_dirs_names_an_unknown_user_owner_or_group(tmp_path, fixture, option):
    args = {"root": fixture["root"], "pkgs_dirs": [str(tmp_path / "host" / "data" / "pkgs")]}
    before = state(tmp_path)
    refused = run(tmp_path, "conda_pkgs_dirs", dict(args, **{option: UNKNOWN[0]}))
    kind = "group" if option == "group" else "user(s)"
    assert refused.get("failed") is True, refused
    assert refused["msg"].startswith("unknown %s: %s (not in the " % (kind, UNKNOWN[0])), refused["msg"]
    assert state(tmp_path) == before

    accepted = run(tmp_path, "conda_pkgs_dirs", dict(args, **{option: "root"}), check_mode=True)
    assert accepted.get("failed") is not True and accepted["changed"] is True, accepted


@pytest.mark.parametrize("workers", [0, -1])
def test_fewer_than_one_worker_is_an_error_before_anything_is_read(tmp_path, fixture, workers):
    args = RUNS["conda_pkgs_backup"](fixture)
    before = state(tmp_path)
    refused = run(tmp_path, "conda_pkgs_backup", dict(args, workers=workers))
    assert refused.get("failed") is True and refused["msg"] == "workers must be 1 or more, not %d" % workers, refused
    assert state(tmp_path) == before

    accepted = run(tmp_path, "conda_pkgs_backup", dict(args, workers=1), check_mode=True)
    assert accepted.get("failed") is not True and accepted["changed"] is True, accepted


@pytest.mark.parametrize("module, option", [("conda_clean", "min_age"), ("conda_clean", "busy_age"),
                                            ("pip_cache_clean", "min_age")])
def test_a_bare_number_of_days_or_seconds_is_refused_by_every_age_option(tmp_path, fixture, module, option):
    args = dict(RUNS[module](fixture), **{option: "7"})
    if module == "pip_cache_clean" and option == "min_age":
        del args["purge"]
    before = state(tmp_path)
    refused = run(tmp_path, module, args)
    assert refused.get("failed") is True, refused
    assert refused["msg"] == "%s=7 has no unit: write 7d for days or 7s for seconds" % option
    assert state(tmp_path) == before


def test_cache_clean_reads_every_kind_s_options_before_any_cache(tmp_path, fixture):
    args = dict(RUNS["cache_clean"](fixture), pip={}, target_free="20%")
    before = state(tmp_path)
    refused = run(tmp_path, "cache_clean", args)
    assert refused.get("failed") is True and refused["msg"] == "nothing to do: set purge, patterns, min_age or uv", refused
    assert state(tmp_path) == before


def test_cache_facts_gathers_the_environments_conda_env_facts_gathers_in_the_same_run(tmp_path, fixture):
    alone = run(tmp_path, "conda_env_facts", {"roots": [fixture["root"]], "mode": "full"})
    together = run(tmp_path, "cache_facts", {"roots": [fixture["root"]], "environment": fixture["environment"],
                                             "gather": ["conda", "envs"], "envs_mode": "full"})
    envs = alone["ansible_facts"]["conda_envs"]
    assert envs["totals"]["environments"] > 0 and envs["mode"] == "full", envs
    assert together["ansible_facts"]["conda_envs"] == envs
    assert sorted(together["ansible_facts"]) == ["conda_cache", "conda_envs"]
