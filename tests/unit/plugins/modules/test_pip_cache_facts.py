"""pip_cache_facts end to end on this machine: the module file run as Ansible runs it (a process
with an args file), and through ``gather_facts`` as a facts module.

Only ``root`` is asked for, with ``PIP_CACHE_DIR``/``UV_CACHE_DIR`` pointing at fixture caches in
a temp dir, so the run is real but reads nothing of the machine's users' caches.  Multi-user
behaviour over real passwd databases is the fleet's job (tests/integration).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from condafab.pipcache import build_pip_cache
from condafab.uvcache import build_real_uv_cache
from condafab.uvcache import manifest as uv_manifest

REPO = Path(__file__).resolve().parents[4]
LINK = REPO / ".build" / "link"
MODULE = LINK / "ansible_collections/pkgcache/fleet/plugins/modules/pip_cache_facts.py"
BIN = Path(sys.executable).parent


def ansible_env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(LINK), ANSIBLE_COLLECTIONS_PATH=str(LINK))
    env.update(extra)
    return env


def run_module(tmp_path: Path, args: dict) -> dict:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, str(MODULE), str(args_file)], env=ansible_env(),
                          capture_output=True, text=True, check=False)
    return json.loads(done.stdout)


def warnings_of(result: dict) -> list:
    """Warning texts; ansible-core 2.19 returns them from modules as structured events."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def du(path) -> int:
    return int(subprocess.run(["du", "-sx", "--block-size=1", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


@pytest.fixture
def caches(tmp_path):
    pip = build_pip_cache(tmp_path / "pip", seed=21, http_entries=10, wheels=5)
    build_real_uv_cache(tmp_path / "uv", tmp_path / "work")  # its venvs share the archives' inodes
    uv = uv_manifest(tmp_path / "uv")
    env = {"PIP_CACHE_DIR": str(tmp_path / "pip"), "UV_CACHE_DIR": str(tmp_path / "uv")}
    return pip, uv, env


def test_module_reports_the_fixture_caches(tmp_path, caches):
    pip, uv, env = caches
    result = run_module(tmp_path, {"users": ["root"], "environment": env})
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    facts = result["ansible_facts"]["pip_cache"]
    root = facts["users"]["root"]
    assert (root["pip"]["path"], root["pip"]["source"], root["pip"]["enabled"]) == (str(tmp_path / "pip"), "PIP_CACHE_DIR", True)
    assert (root["uv"]["path"], root["uv"]["source"]) == (str(tmp_path / "uv"), "UV_CACHE_DIR")
    got_pip = facts["caches"][str(tmp_path / "pip")]
    assert got_pip["users"] == ["root"]
    assert got_pip["usage"]["apparent_bytes"] == pip["apparent_bytes"]
    assert got_pip["usage"]["disk_bytes"] == du(tmp_path / "pip")
    assert got_pip["sections"]["wheels"]["items"] == 5
    assert got_pip["sections"]["http-v2"]["items"] == 10
    assert got_pip["sections"]["http-v2"]["oldest_mtime"] == pip["sections"]["http-v2"]["oldest_mtime"]
    got_uv = facts["caches"][str(tmp_path / "uv")]
    assert got_uv["usage"]["apparent_bytes"] == uv["apparent_bytes"]
    assert got_uv["usage"]["reclaimable_bytes"] < got_uv["usage"]["disk_bytes"] == du(tmp_path / "uv")
    assert facts["totals"]["all"]["disk_bytes"] == du(tmp_path / "pip") + du(tmp_path / "uv")


def test_check_mode_gives_the_same_facts(tmp_path, caches):
    _pip, _uv, env = caches
    normal = run_module(tmp_path, {"users": ["root"], "environment": env})
    checked = run_module(tmp_path, {"users": ["root"], "environment": env, "_ansible_check_mode": True})
    assert checked.get("skipped") is not True
    assert without_ages(checked["ansible_facts"]["pip_cache"]) == without_ages(normal["ansible_facts"]["pip_cache"])


def without_ages(value):
    """Ages move with the clock between two runs; everything else must not."""
    if isinstance(value, dict):
        return {k: without_ages(v) for k, v in value.items() if not k.endswith("_age_seconds")}
    return value


def test_unknown_user_is_a_clear_error_before_anything_is_read(tmp_path, caches):
    _pip, _uv, env = caches
    result = run_module(tmp_path, {"users": ["root", "no-such-user-here"], "environment": env})
    assert result.get("failed") is True
    assert result["msg"] == "unknown user(s): no-such-user-here (not in the passwd database)"
    assert "ansible_facts" not in result and warnings_of(result) == []


def test_malformed_config_named_in_a_warning(tmp_path, caches):
    _pip, _uv, env = caches
    bad = tmp_path / "broken.conf"
    bad.write_text("[global\n")
    result = run_module(tmp_path, {"users": ["root"], "environment": dict(env, PIP_CONFIG_FILE=str(bad))})
    assert result["ansible_facts"]["pip_cache"]["users"]["root"]["pip"]["path"] == str(tmp_path / "pip")
    assert any(str(bad) in warning for warning in warnings_of(result))


def test_environment_must_be_a_dict(tmp_path):
    result = run_module(tmp_path, {"environment": ["PIP_CACHE_DIR", "/x"]})
    assert result["failed"] is True and "environment" in result["msg"]


PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: true
  module_defaults:
    pkgcache.fleet.pip_cache_facts:
      users: [root]
      environment: {env}
  tasks:
    - ansible.builtin.copy:
        content: "{{{{ ansible_facts.pip_cache.caches[ansible_facts.pip_cache.users.root.pip.path].usage.disk_bytes }}}}"
        dest: {out}
        mode: "0644"
"""


def test_works_as_a_facts_module_from_gather_facts(tmp_path, caches):
    _pip, _uv, env = caches
    book = tmp_path / "play.yml"
    out = tmp_path / "disk_bytes.txt"
    book.write_text(PLAYBOOK.format(env=json.dumps(env), out=out))
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-e", "ansible_python_interpreter=" + sys.executable, str(book)],
        env=ansible_env(ANSIBLE_FACTS_MODULES="pkgcache.fleet.pip_cache_facts", ANSIBLE_LOCALHOST_WARNING="false"),
        capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert out.read_text() == str(du(tmp_path / "pip"))
