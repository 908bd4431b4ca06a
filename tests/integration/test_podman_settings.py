"""The podman settings the podman molecule scenario runs with (testfleet.podman).

The scenario itself (``molecule test -s podman``) runs containers from the imported image; this
checks, in a second, that the private configuration is the one podman reads: runc, cgroupfs,
vfs storage under the given directory, no network, the lowered ulimits - and nothing from /etc.
"""

import json
import os
import subprocess

from testfleet import podman


def podman_info(env):
    out = subprocess.run(["podman", "info", "--format", "json"], env=dict(os.environ, **env),
                         check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    return json.loads(out)


def test_podman_reads_the_private_settings(tmp_path):
    env = podman.write_config(tmp_path)
    assert env == podman.environment(tmp_path)
    info = podman_info(env)
    assert info["host"]["ociRuntime"]["name"] == "runc"
    assert info["host"]["cgroupManager"] == "cgroupfs"
    assert info["store"]["graphDriverName"] == "vfs"
    assert info["store"]["graphRoot"] == str(tmp_path / "storage")
    assert info["store"]["runRoot"] == str(tmp_path / "run")
    text = (tmp_path / "containers.conf").read_text()
    assert 'netns = "none"' in text
    assert '"nofile=1024:1024"' in text and '"nproc=1024:1024"' in text


def test_no_image_is_reported_as_none(tmp_path):
    env = podman.write_config(tmp_path)
    assert podman.image_version(env) is None
