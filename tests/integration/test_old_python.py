"""A managed host whose Python is older than 3.8: every module fails naming the version.

ansible-core's module wrapper itself stops with a SyntaxError under 3.7, so before the action in
front of each module asked, the task failed with "Module result deserialization failed".  Run
for real: a 3.7 interpreter (on PATH or kept by pyenv) is the managed host's interpreter, over
the local connection, so the module payload is built, sent and started exactly as over SSH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from interpreters import require_python

REPO = Path(__file__).resolve().parents[2]
LINK = REPO / ".build" / "link"
OLD = "3.7"


@pytest.fixture(scope="module")
def python37():
    return require_python(OLD)


def adhoc(interpreter, module, args, *flags):
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(LINK), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run([ansible, "localhost", "-c", "local", "-e", "ansible_python_interpreter=" + interpreter,
                           "-m", "pkgcache.fleet." + module, "-a", json.dumps(args)] + list(flags),
                          capture_output=True, text=True, env=env, check=False, timeout=300)


@pytest.mark.parametrize("module, args, flags", [
    ("conda_cache_facts", {"users": ["root"]}, ()),
    ("conda_clean", {"users": ["root"]}, ("--check", "--diff")),
    ("pip_cache_clean", {"users": ["root"], "purge": True}, ("--check",)),
    ("rattler_cache_clean", {"users": ["root"]}, ("--check",)),
])
def test_a_python_37_host_is_named_with_its_version(python37, module, args, flags):
    version = subprocess.run([python37, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    done = adhoc(python37, module, args, *flags)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "pkgcache.fleet needs Python 3.8+ on managed hosts, localhost has %s (%s)" % (version, python37) in out, out
    assert "deserialization failed" not in out


def test_a_supported_python_runs_the_module_unchanged(python37):
    done = adhoc(sys.executable, "conda_cache_facts", {"users": ["root"]})
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
