# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The code that runs on managed hosts, run by the oldest Python it supports (3.8).

ansible-test's pylint only reads the code with 3.8's grammar; here 3.8 executes it: facts (with
the forked walkers forced on) and a check-mode clean of a fixture host must come out exactly as
under this interpreter.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from condafab.layouts import DEFAULT_USERS, LAYOUTS, ROOT_USER
from interpreters import require_python

from .hostroot import require_root

OLDEST = "3.8"
LINK = Path(__file__).resolve().parents[4] / ".build" / "link"
TARGET_CODE = [LINK / "ansible_collections/pkgcache/fleet/plugins" / d for d in ("module_utils", "modules")]
SCRIPT = r"""
import json, os, sys
from ansible_collections.pkgcache.fleet.plugins.module_utils import _diskusage, conda_clean, conda_envs, conda_facts
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host
fsroot, users = json.loads(sys.argv[1])
_diskusage.PARALLEL_MIN_TOPS = 1
os.chroot(fsroot)
os.chdir("/")
users = [User(*u) for u in users]
facts = conda_facts.gather(users)
for cache in facts["caches"]:
    cache.pop("filesystem", None)
plan = conda_clean.clean(Host.load(users), set(conda_clean.TARGETS), conda_clean.Policy(), check_mode=True)
envs = conda_envs.gather(users, mode="full")
print(json.dumps({"facts": facts, "plan": plan["plan"], "bytes": plan["planned_bytes"], "envs": envs}, sort_keys=True))
"""


@pytest.fixture(scope="module")
def python38():
    return require_python(OLDEST)


def test_target_code_compiles_under_the_oldest_python(python38, tmp_path):
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp_path))  # no bytecode in the tree
    done = subprocess.run([python38, "-m", "compileall", "-q", "-f"] + [str(p) for p in TARGET_CODE],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def run_under(python, fsroot, users):
    arg = json.dumps([str(fsroot), [[u.name, u.uid, u.gid, u.home] for u in users]])
    done = subprocess.run([python, "-c", SCRIPT, arg], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(LINK)), check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("layout", ["multi_user", "softlinked_env"])
def test_facts_and_clean_plan_under_the_oldest_python_equal_this_ones(tmp_path, python38, layout):
    require_root()
    fsroot = tmp_path / "host"
    manifest = LAYOUTS[layout](fsroot, 11, list(DEFAULT_USERS))
    hours_ago = time.time() - 7200
    for path, cache in manifest.caches.items():
        for name in cache.partial:
            os.utime(str(manifest.real(path) / name), (hours_ago, hours_ago))
    users = [ROOT_USER] + list(DEFAULT_USERS)
    old, new = run_under(python38, fsroot, users), run_under(sys.executable, fsroot, users)
    assert old["facts"]["totals"]["extracted"] > 0 and old["plan"]
    assert old["envs"]["environments"] and all(e["health"]["hashed_files"] for e in old["envs"]["environments"])
    assert old == new
