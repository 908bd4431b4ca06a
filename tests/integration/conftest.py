"""Integration tests run against a real SSH fleet: one namespace host per conda layout.

The fleet is session-scoped (bringing it up costs about a second, but every test module shares
it) and always torn down, also when tests fail or the run is interrupted.
"""

import os
import shutil

import pytest

from testfleet import layouts
from testfleet.fleet import running

FLEET_LAYOUTS = layouts.CONDA_LAYOUTS
REQUIRED_TOOLS = ("unshare", "mount", "umount", "chroot", "ip", "ssh", "ssh-keygen", "mmdebstrap")


def fleet_unavailable():
    """Why namespace hosts cannot run here, or None.  Only these reasons skip; anything else
    (a broken rootfs, sshd not answering) fails the run."""
    if os.geteuid() != 0:
        return "the SSH test fleet needs root (overlay mounts, PID/mount namespaces)"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return "the SSH test fleet needs {0}; run `make apt`".format(", ".join(missing))
    return None


@pytest.fixture(scope="session")
def fleet_state_factory(tmp_path_factory):
    """State directories for fleets, skipping cleanly where no fleet can run."""
    reason = fleet_unavailable()
    if reason:
        pytest.skip(reason)
    return tmp_path_factory.mktemp


@pytest.fixture(scope="session")
def fleet(fleet_state_factory):
    """Hosts h1..h5, one per conda layout (``fleet_layout`` in the inventory says which)."""
    with running(fleet_state_factory("fleet"), len(FLEET_LAYOUTS), FLEET_LAYOUTS) as up:
        yield up
