# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local command as an image-build step (issue 19): ``RUN ... pkgcache clean`` the way
roles/cache_schedule/README.md documents it, proven inside a chroot of the test rootfs (Debian, its
own python3) carrying a conda layout with a soft-linked environment - the case ``conda clean
--all`` breaks.

The build step is what a container build does: a private mount and PID namespace with its own
/proc, the collection bind-mounted for the one step (so the image keeps nothing of it), the
rootfs' own interpreter, a clean environment.  The test code never runs inside the chroot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_conda_modules import symlinks_resolve
from test_playbooks import VOLATILE
from testfleet.fleet import running

REPO = Path(__file__).resolve().parents[2]
MOUNT = "/mnt"
COMMAND = "ansible_collections.pkgcache.fleet.plugins.module_utils.local_command"


@pytest.fixture(scope="module")
def image(fleet_state_factory):
    """A rootfs with a conda layout (a test host's tree; its sshd is not used)."""
    with running(fleet_state_factory("image"), 1, ("softlinked_env",), seed=11) as fleet:
        name = fleet.hosts[0]
        for partial in fleet.root_of(name).glob("**/pkgs/*.partial"):
            os.utime(partial, (1, 1))
        yield fleet, name


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """The collection as a build context holds it (an installed collection's tree, real files)."""
    top = tmp_path_factory.mktemp("context")
    target = top / "ansible_collections" / "pkgcache" / "fleet" / "plugins" / "module_utils"
    shutil.copytree(REPO / "plugins" / "module_utils", target, ignore=shutil.ignore_patterns("__pycache__"))
    return top


def build_step(root, collection, args):
    """``RUN --mount=type=bind,source=collections,target=/mnt PYTHONPATH=/mnt python3 -m ... ARGS``."""
    script = ('mount --bind "$1" "$2/mnt" && mount -t proc proc "$2/proc" && shift 2 && '
              'exec chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root PYTHONPATH=%s '
              '/usr/bin/python3 -m %s "$@"' % (MOUNT, COMMAND))
    return subprocess.run(["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c", script,
                           "build-step", str(collection), str(root)] + list(args),
                          env=dict(os.environ, ROOT=str(root)), capture_output=True, text=True, check=False)


def test_a_build_step_cleans_the_image_keeps_its_environments_and_leaves_nothing(image, collection):
    fleet, name = image
    root = fleet.root_of(name)
    built = json.loads(fleet.manifest_of(name).read_text())
    assert any(os.path.islink(p) for env in built["envs"] for p in (root / env.lstrip("/")).rglob("*")), \
        "the layout has a soft-linked environment"
    plan = build_step(root, collection, ["clean", "--check", "--json", "--targets", "all"])
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)
    assert planned["paths"] and planned["changed"]

    done = build_step(root, collection, ["clean", "--targets", "all"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed %d path(s)" % len(planned["paths"])), done.stdout
    assert not [p for p in planned["paths"] if os.path.lexists(root / p.lstrip("/"))]
    for env in built["envs"]:
        assert symlinks_resolve(root, env) == [], env
    pip = build_step(root, collection, ["clean-pip", "--purge", "--json"])
    assert pip.returncode == 0, pip.stderr
    again = build_step(root, collection, ["clean", "--targets", "all"])
    assert again.returncode == 0 and again.stdout.startswith("removed 0 path(s)"), again.stdout

    # The step's mounts went with its namespace; the image holds no trace of the tool.
    assert not os.listdir(root / "mnt") and not os.listdir(root / "proc")
    upper = fleet.host_dir(name) / "upper"
    assert [str(p) for p in upper.rglob("*") if ("pkgcache" in p.name or p.name == "__pycache__")
            and not VOLATILE & set(p.relative_to(upper).parts)] == []


def test_a_bad_flag_fails_the_build_step(image, collection):
    fleet, name = image
    done = build_step(fleet.root_of(name), collection, ["clean", "--min-age", "7"])
    assert done.returncode == 2 and "min_age" in done.stderr, done.stderr
