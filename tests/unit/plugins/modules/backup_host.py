# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A condafab host for conda_pkgs_backup, and the module run as Ansible runs it (a process with an
args file).  Shared by the module's tests and by the recorder of its results for the report tests.

Only ``root`` is considered and the installation is named with ``roots``, so a run reads the
fixture, not this machine's users.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from condafab.host import HostBuilder

REPO = Path(__file__).resolve().parents[4]
LINK = REPO / ".build" / "link"
MODULE = LINK / "ansible_collections/pkgcache/fleet/plugins/modules/conda_pkgs_backup.py"


def module_command(tmp_path: Path, args: dict, launcher=()) -> tuple:
    """``(argv, env)`` of one module run; ``launcher``: a script (and its interpreter flags) that
    runs the module file itself, given its path and the args file."""
    args_file = tmp_path / "args.json"
    args.setdefault("users", ["root"])
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(LINK), ANSIBLE_COLLECTIONS_PATH=str(LINK))
    return [sys.executable, *launcher, str(MODULE), str(args_file)], env


def run_module(tmp_path: Path, **args) -> dict:
    argv, env = module_command(tmp_path, args)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return json.loads(done.stdout)


def build_host(tmp_path: Path, packages: int = 20) -> dict:
    """``/opt/conda`` with a base env, an env, and a cache with extracted and tarball-only packages."""
    builder = HostBuilder(tmp_path / "host", seed=11)
    catalog = builder.catalog(packages, 5)
    inst = builder.install("/opt/conda", catalog)
    rest = [p for p in catalog.packages if p.dist not in inst.cache.packages]
    for index, pkg in enumerate(rest):
        inst.cache.add(pkg, extracted=index % 5 != 0)
    builder.env("/opt/conda/envs/web", inst.cache.extracted_packages[:4], inst.cache)
    builder.finish()
    root = tmp_path / "host" / "opt" / "conda"
    dest = tmp_path / "backup"
    dest.mkdir()
    return {"root": str(root), "cache": str(root / "pkgs"), "dest": str(dest)}
