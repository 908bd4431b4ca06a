"""Old Python interpreters the tests run target code with: on PATH, or kept by pyenv."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest


def find_python(version):
    """The newest ``python<version>`` that starts, or None."""
    found = shutil.which("python" + version)
    if found and subprocess.run([found, "-c", ""], capture_output=True, check=False).returncode == 0:
        return found
    root = os.path.expanduser("~/.pyenv")
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip() or root
    candidates = sorted(glob.glob(os.path.join(root, "versions", version + ".*", "bin", "python" + version)))
    return candidates[-1] if candidates else None


def require_python(version):
    """The interpreter, or the test is skipped saying which one this machine lacks."""
    found = find_python(version)
    if found is None:
        pytest.skip("no Python %s interpreter on this machine" % version)
    return found
