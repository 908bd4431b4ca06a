# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Without become a run cannot read other users' homes (issue 14, finding 3): facts say they are
incomplete and why, cleaning modules refuse instead of planning from half the picture.

The real modules run as the real account ``nobody``; nothing is faked about the identity."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

LINK = Path(__file__).resolve().parents[4] / ".build" / "link"
MODULES = LINK / "ansible_collections/pkgcache/fleet/plugins/modules"
BLIND = "not running as root (use become: true)"


def run(module: str, args: dict, user=None) -> dict:
    """The module run by the host's own Python as ``user`` (this venv's interpreter lives where
    other accounts cannot reach it), with this venv's packages on its path."""
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None or subprocess.run([python, "-c", "import sys; sys.exit(sys.version_info[:2] != %r)"
                                         % (sys.version_info[:2],)], check=False).returncode:
        pytest.skip("no host python3 of this venv's version")
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o755)
        args_file = Path(scratch) / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=True)}))
        path = os.pathsep.join([str(LINK)] + site.getsitepackages())
        env = dict(os.environ, PYTHONPATH=path, ANSIBLE_COLLECTIONS_PATH=str(LINK), HOME=scratch)
        done = subprocess.run([python, str(MODULES / (module + ".py")), str(args_file)], env=env, user=user,
                              cwd=scratch, capture_output=True, text=True, check=False)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"failed": True, "msg": done.stderr[-2000:]}


@pytest.fixture(scope="module")
def nobody():
    if os.geteuid() != 0:
        pytest.skip("needs root to run a module as another account")
    try:
        name = pwd.getpwnam("nobody").pw_name
    except KeyError:
        pytest.skip("no account named nobody")
    probe = run("conda_cache_facts", {"users": [name]}, user=name)
    if "ansible_facts" not in probe:
        pytest.skip("the collection and this venv's packages are not readable by %s here: %s" % (name, probe))
    return name


@pytest.mark.parametrize("module, fact", [("conda_cache_facts", "conda_cache"), ("pip_cache_facts", "pip_cache")])
def test_facts_without_root_say_they_are_incomplete_and_why(nobody, module, fact):
    facts = run(module, {}, user=nobody)["ansible_facts"][fact]
    assert facts["complete"] is False and any(r.startswith(BLIND) for r in facts["incomplete_reasons"])
    own = run(module, {"users": [nobody]}, user=nobody)["ansible_facts"][fact]
    assert not [r for r in own["incomplete_reasons"] if r.startswith(BLIND)], "its own account is all it asked for"
    as_root = run(module, {})["ansible_facts"][fact]
    assert not [r for r in as_root["incomplete_reasons"] if r.startswith(BLIND)]


@pytest.mark.parametrize("module, args", [("conda_clean", {}), ("pip_cache_clean", {"purge": True})])
def test_cleaning_without_root_refuses_unless_it_acts_for_its_own_account_alone(nobody, module, args):
    refused = run(module, args, user=nobody)
    assert refused.get("failed") and BLIND in refused["msg"] and "users: [%s]" % nobody in refused["msg"], refused
    alone = run(module, dict(args, users=[nobody]), user=nobody)
    assert BLIND not in alone.get("msg", ""), alone
