# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local ``pkgcache`` command (issue 19): the modules' options as flags, the modules' code,
documented exit codes, a ``--json`` result of the modules' shape; and it runs with no Ansible."""

from __future__ import annotations

import io
import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from condafab.pipcache import build_pip_cache

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_clean, facts, local_command, pip_clean, rattler_clean
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import walk
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import format_size

from .hostroot import in_root
from .test_conda_clean import USERS
from .test_conda_clean import build as build_host

LINK = Path(__file__).resolve().parents[4] / ".build" / "link"


def build(tmp_path, layout):
    """A fixture host whose passwd lists its accounts: the command, like the modules, takes every
    account by default (the NSS files module is loaded here, before any chroot, to read it)."""
    fsroot, manifest = build_host(tmp_path, layout)
    (fsroot / "etc").mkdir(exist_ok=True)
    (fsroot / "etc" / "passwd").write_text("".join(
        "%s:x:%d:%d::%s:/bin/sh\n" % (u.name, u.uid, u.gid, u.home) for u in USERS))
    pwd.getpwall()
    return fsroot, manifest


def command(argv):
    """``(exit code, stdout, stderr)`` of the command run in this process."""
    out, err = io.StringIO(), io.StringIO()
    code = local_command.main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def in_host(fsroot, argv):
    return in_root(fsroot, command, argv)


def test_every_module_option_is_a_flag():
    parser = local_command.build_parser()
    helps = dict((name, sub.format_help()) for name, sub in parser._subparsers._group_actions[0].choices.items())
    for command_name, spec in (("clean", conda_clean.argument_spec), ("clean-pip", pip_clean.argument_spec),
                               ("clean-rattler", rattler_clean.argument_spec), ("facts", facts.argument_spec)):
        for option in spec():
            assert "--" + option.replace("_", "-") in helps[command_name], (command_name, option)


def test_clean_check_plans_exactly_what_the_module_code_plans_and_the_real_run_removes_it(tmp_path):
    fsroot, _manifest = build(tmp_path, "multi_user")
    code, out, err = in_host(fsroot, ["clean", "--check", "--json", "--targets", "tarballs", "packages"])
    assert code == 0, err
    planned = json.loads(out)
    params = dict((name, option.get("default")) for name, option in conda_clean.argument_spec().items())
    params["targets"] = ["tarballs", "packages"]
    direct, _warnings = in_root(fsroot, conda_clean.clean_from_options, params, True)
    assert planned["paths"] == [i["path"] for c in planned["caches"] for i in c["remove"]]
    assert [c["remove"] for c in planned["caches"]] == [c["remove"] for c in direct["caches"]]
    assert planned["planned_bytes"] == direct["planned_bytes"] > 0
    assert set(planned) >= {"changed", "caches", "removed", "planned_bytes", "freed_bytes", "msg", "restricted"}
    code, out, _err = in_host(fsroot, ["clean", "--json", "--targets", "tarballs", "packages"])
    done = json.loads(out)
    assert code == 0 and sorted(done["removed"]) == sorted(i["path"] for c in planned["caches"] for i in c["remove"])
    code, out, _err = in_host(fsroot, ["clean", "--targets", "tarballs", "packages"])
    assert code == 0 and out.startswith("removed 0 path(s)")  # idempotent, and the human summary leads


def test_compact_json_is_the_modules_compact_shape(tmp_path):
    fsroot, _manifest = build(tmp_path, "multi_user")
    code, out, err = in_host(fsroot, ["clean", "--check", "--json", "--compact", "--targets", "tarballs"])
    small = json.loads(out)
    full = json.loads(in_host(fsroot, ["clean", "--check", "--json", "--targets", "tarballs"])[1])
    assert code == 0 and [c["remove_count"] for c in small["caches"]] == [len(c["remove"]) for c in full["caches"]]
    assert sum(c["remove_count"] for c in small["caches"]) > 0 and small["planned_bytes"] == full["planned_bytes"]


def test_exit_codes_say_what_went_wrong(tmp_path):
    fsroot, _manifest = build(tmp_path, "single_root")
    assert in_host(fsroot, ["clean", "--min-age", "7"])[0] == local_command.BAD_OPTIONS  # no unit: refused
    assert in_host(fsroot, ["clean", "--users", "nosuchuser"])[0] == local_command.BAD_OPTIONS
    policy = fsroot / "policy.json"
    policy.write_text(json.dumps({"min_aeg": "7d"}))
    code, _out, err = in_host(fsroot, ["clean", "--check", "--policy", "/policy.json"])
    assert code == local_command.BAD_OPTIONS and "unknown option(s) min_aeg; valid:" in err
    policy.write_text(json.dumps({"min_age": "30d", "targets": ["tarballs"]}))
    code, out, _err = in_host(fsroot, ["clean", "--check", "--json", "--policy", "/policy.json", "--min-age", "0"])
    assert code == 0 and json.loads(out)["changed"], "flags override the policy file"
    (fsroot / "notacache").mkdir()
    assert in_host(fsroot, ["clean", "--check", "--pkgs-dirs", "/notacache"])[0] == local_command.REFUSED
    assert in_host(fsroot, [])[0] == local_command.BAD_OPTIONS


def test_facts_are_the_modules_facts(tmp_path):
    fsroot, _manifest = build(tmp_path, "single_root")
    code, out, _err = in_host(fsroot, ["facts", "--json", "--gather", "conda"])
    params = dict((name, option.get("default")) for name, option in facts.argument_spec().items())
    params["gather"] = ["conda"]
    direct = in_root(fsroot, lambda: facts.gather(facts.select(params), params, ["conda"], lambda m: None))
    assert code == 0 and json.loads(out)["conda_cache"]["totals"] == direct["conda_cache"]["totals"]


def test_it_runs_with_the_hosts_python_and_no_ansible(tmp_path):
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        pytest.skip("no host python3")
    env = {"PYTHONPATH": str(LINK), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    probe = subprocess.run([python, "-c", "import ansible"], env=env, capture_output=True, check=False)
    if probe.returncode == 0:
        pytest.skip("the host python has Ansible; this test proves the command needs none")
    cache = tmp_path / "pip"
    (cache / "wheels" / "ab").mkdir(parents=True)
    (cache / "wheels" / "ab" / "demo-1.0-py3-none-any.whl").write_bytes(b"PK")
    env.update(PIP_CACHE_DIR=str(cache))
    done = subprocess.run([python, "-m", "ansible_collections.pkgcache.fleet.plugins.module_utils.local_command",
                           "clean-pip", "--purge", "--users", "root", "--environment", "PIP_CACHE_DIR=%s" % cache,
                           "--json"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["removed"] and not (cache / "wheels" / "ab").exists()
    assert os.path.isdir(cache)


def test_clean_to_a_target_with_flags_says_where_it_stopped(tmp_path):
    cache = tmp_path / "pip"
    build_pip_cache(cache, seed=4, http_entries=12, wheels=4)
    limit = walk(str(cache)).on_disk // 2
    argv = ["clean-pip", "--users", "root", "--min-age", "0", "--environment", "PIP_CACHE_DIR=%s" % cache,
            "--environment", "PIP_CONFIG_FILE=%s" % os.devnull, "--max-cache-size", str(limit)]
    assert command(argv + ["--target-free", "120%"])[0] == local_command.BAD_OPTIONS
    code, out, err = command(argv + ["--check"])
    assert code == 0, err
    assert "#1, " in out and "target caches at most %s on " % format_size(limit) in out and ": met;" in out and "stopped at" in out
    code, out, _err = command(argv + ["--json"])
    assert code == 0 and json.loads(out)["target"][0]["met"] and walk(str(cache)).on_disk <= limit
    assert json.loads(command(argv + ["--json"])[1])["changed"] is False
