"""A podman image of the test rootfs, and a podman configuration private to this work tree.

The image is imported from the cached rootfs (no registry, no network): the same Debian tree
the namespace hosts overlay, with python3, sudo and the ``ansible`` login user.  Its label
``pkgcache.rootfs`` names the rootfs version, so a new rootfs recipe re-imports it.

Podman runs here only with settings that the distribution defaults do not give: runc (crun
refuses cgroups v1 hybrid hosts), the cgroupfs manager (no systemd as PID 1 on test machines),
the vfs storage driver (no overlay or fuse-overlayfs needed), ulimits no higher than the
machine's (raising them is refused), no network.  They go into a containers.conf and a
storage.conf of their own, chosen with ``CONTAINERS_CONF`` / ``CONTAINERS_STORAGE_CONF``, with
images and containers stored under the given directory: nothing under /etc or
/var/lib/containers is read or changed.
"""

import fcntl
import os
import subprocess
from pathlib import Path

from testfleet import rootfs

IMAGE = "localhost/pkgcache-testhost:{0}".format(rootfs.SUITE)
LABEL = "pkgcache.rootfs"

CONTAINERS_CONF = """\
# Written by `python -m testfleet podman`; selected through CONTAINERS_CONF.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
# The containers idle in a shell loop that, as PID 1, ignores SIGTERM: do not wait 10 s for it.
stop_timeout = 1
tmp_dir = "{run}/libpod"
"""

STORAGE_CONF = """\
# Written by `python -m testfleet podman`; selected through CONTAINERS_STORAGE_CONF.
[storage]
driver = "vfs"
graphroot = "{storage}"
runroot = "{run}"
"""


def environment(directory):
    """The variables that make podman use the configuration under *directory*."""
    directory = Path(directory).resolve()
    return {
        "CONTAINERS_CONF": str(directory / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(directory / "storage.conf"),
    }


def write_config(directory):
    """Write containers.conf and storage.conf under *directory*; return their environment."""
    directory = Path(directory).resolve()
    for sub in ("storage", "run"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    paths = {"storage": directory / "storage", "run": directory / "run"}
    (directory / "containers.conf").write_text(CONTAINERS_CONF.format(**paths))
    (directory / "storage.conf").write_text(STORAGE_CONF.format(**paths))
    return environment(directory)


def _podman(env, *argv, check, **kwargs):
    return subprocess.run(["podman"] + list(argv), env=dict(os.environ, **env), check=check, **kwargs)


def image_version(env, image=IMAGE):
    """The rootfs version *image* was imported from, or None when there is no such image."""
    found = _podman(env, "image", "inspect", "--format", "{{index .Labels \"" + LABEL + "\"}}",
                    image, check=False, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    universal_newlines=True)
    return (found.stdout.strip() or None) if found.returncode == 0 else None


def ensure_image(directory, image=IMAGE):
    """Import the cached rootfs as *image* unless an import of this rootfs version is there."""
    env = write_config(directory)
    with open(str(Path(directory).resolve() / "image.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image_version(env, image) == rootfs.VERSION:
            return False
        tree = rootfs.ensure()
        tar = subprocess.Popen(["tar", "-C", str(tree), "--exclude", "./" + rootfs.READY_MARKER,
                                "-c", "."], stdout=subprocess.PIPE)
        try:
            _podman(env, "import", "--quiet", "--change", "LABEL {0}={1}".format(LABEL, rootfs.VERSION),
                    "-", image, stdin=tar.stdout, stdout=subprocess.DEVNULL, check=True)
        finally:
            tar.stdout.close()
            if tar.wait() != 0:
                raise RuntimeError("tar of {0} failed".format(tree))
        # Earlier imports of older rootfs versions lose their name; drop them.
        _podman(env, "image", "prune", "--force", stdout=subprocess.DEVNULL, check=False)
        return True
