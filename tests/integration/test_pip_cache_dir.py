"""pip_cache_dir over SSH with the real pip and uv on the host.

One bare host of its own (it rewrites configs and moves caches).  pip is the controller venv's
own pip package, run by the host's python3; uv is the ``uv`` package's binary.  A local index is a
``file://`` find-links directory holding sdists built with an in-tree PEP 517 backend, so
``pip wheel`` builds real wheels and stores them in the cache it resolves, without any network.
Each cache sits on a tmpfs of its own, so what the move reports is checked against ``statvfs``.
"""

import fcntl
import io
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pip
import pytest

import test_conda_pkgs_dirs
from test_playbooks import run_job, task_results
from testfleet.fleet import running

MODULE = "pkgcache.fleet.pip_cache_dir"
ALICE = (1001, 1001)
INDEX = "/srv/index"

BACKEND = textwrap.dedent('''\
    """A PEP 517 backend of a few lines: the wheel of this sdist, built with zipfile."""
    import base64, hashlib, os, zipfile

    def _name():
        return open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "NAME")).read().split()

    def get_requires_for_build_wheel(config_settings=None):
        return []

    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        name, version = _name()
        dist = "%s-%s.dist-info" % (name, version)
        files = {name + ".py": open("payload.py", "rb").read(),
                 dist + "/METADATA": ("Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n" % (name, version)).encode(),
                 dist + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
        record = "".join("%s,sha256=%s,%d\\n" % (path, base64.urlsafe_b64encode(hashlib.sha256(data).digest())
                                                 .rstrip(b"=").decode(), len(data)) for path, data in files.items())
        files[dist + "/RECORD"] = (record + dist + "/RECORD,,\\n").encode()
        filename = "%s-%s-py3-none-any.whl" % (name, version)
        with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as wheel:
            for path, data in files.items():
                wheel.writestr(path, data)
        return filename
''')


def sdist(name, version, payload):
    """``<name>-<version>.tar.gz`` whose pyproject names the backend above (no build requirements)."""
    base = "%s-%s" % (name, version)
    members = {
        "pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": BACKEND.encode(),
        "NAME": ("%s %s\n" % (name, version)).encode(),
        "payload.py": b"DATA = %r\n" % payload,
        "PKG-INFO": ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version)).encode(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for path, data in members.items():
            info = tarfile.TarInfo("%s/%s" % (base, path))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return base + ".tar.gz", out.getvalue()


def install_tools(root):
    """pip (the venv's package) and uv (its binary) on the host, and the local index."""
    shutil.copytree(os.path.dirname(pip.__file__), str(root / "opt/pip/pip"), dirs_exist_ok=True)
    wrapper = root / "usr/local/bin/pip"
    wrapper.write_text('#!/bin/sh\nPYTHONPATH=/opt/pip exec python3 -m pip "$@"\n')
    wrapper.chmod(0o755)
    shutil.copy2(shutil.which("uv", path=os.path.dirname(sys.executable)), str(root / "usr/local/bin/uv"))
    index = root / INDEX.lstrip("/")
    index.mkdir(parents=True, exist_ok=True)
    for number, name in enumerate(("pkgcache_demo", "pkgcache_other")):
        filename, data = sdist(name, "1.0", os.urandom(300000 + number))
        (index / filename).write_bytes(data)


@pytest.fixture(scope="module")
def host(fleet_state_factory):
    with running(fleet_state_factory("piprelo"), 1, ("bare",)) as fleet:
        name = fleet.hosts[0]
        install_tools(fleet.root_of(name))
        yield fleet, name, fleet.root_of(name)


def call(fleet, host, args, tmp_path, check=False):
    return test_conda_pkgs_dirs.call(fleet, host, args, tmp_path, check=check, module=MODULE)


def shell(fleet, host, command):
    result = fleet.run_module(host, "ansible.builtin.shell", command, become=True)[host]
    assert result.get("rc") == 0, (result.get("stdout"), result.get("stderr"))
    return result["stdout"]


def as_alice(fleet, host, command, user="alice"):
    """A command in a user's own session: su runs pam_env, as ssh does, so /etc/environment applies."""
    return shell(fleet, host, "cd /home/%s && su %s -s /bin/sh -c '%s'" % (user, user, command))


def wheel(fleet, host, project, user="alice"):
    """``pip wheel`` from the local index as a user: builds the sdist and caches the built wheel."""
    return as_alice(fleet, host, "pip wheel --no-index --find-links file://%s %s -w /tmp/wheels-%s" % (
        INDEX, project, user), user)


def used_bytes(path):
    st = os.statvfs(str(path))
    return (st.f_blocks - st.f_bfree) * st.f_frsize


class Mounted(object):
    """tmpfs mounts under the host's root, always unmounted."""

    def __init__(self):
        self.points = []

    def tmpfs(self, path, options="size=64m"):
        path.mkdir(parents=True, exist_ok=True)
        subprocess.check_call(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)])
        self.points.append(path)
        return path

    def close(self):
        for path in reversed(self.points):
            subprocess.call(["umount", str(path)]) and subprocess.call(["umount", "-l", str(path)])


@pytest.fixture
def disks():
    mounted = Mounted()
    try:
        yield mounted
    finally:
        mounted.close()


def cached_wheels(top):
    return sorted(name for _dir, _dirs, files in os.walk(str(top)) for name in files if name.endswith(".whl"))


def test_a_users_pip_cache_moves_across_filesystems_and_pip_uses_the_new_one(host, disks, tmp_path):
    fleet, name, root = host
    old_fs = disks.tmpfs(root / "home/alice/.cache", "size=64m,uid=1001,gid=1001,mode=0700")
    new_fs = disks.tmpfs(root / "srv/pipdisk", "size=64m")
    wheel(fleet, name, "pkgcache_demo")
    assert cached_wheels(old_fs / "pip") == ["pkgcache_demo-1.0-py3-none-any.whl"]
    conf = root / "home/alice/.config/pip/pip.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("# alice's pip\n[global]\ntimeout = 30\n\n[install]\n; compile later\nno-compile = yes\n")
    os.chown(str(conf), *ALICE)
    os.chown(str(conf.parent), *ALICE)
    os.chown(str(conf.parent.parent), *ALICE)
    args = {"user": "alice", "cache_dir": "/srv/pipdisk/alice", "migrate": True}

    planned = call(fleet, name, args, tmp_path, check=True)
    assert planned["changed"] and not planned["failed"], planned.get("msg")
    assert planned["migration"]["method"] == "copy" and planned["created"] == ["/srv/pipdisk/alice"]
    assert "cache-dir = /srv/pipdisk/alice" in planned["diff"][0]["after"]
    assert not (new_fs / "alice").exists() and conf.read_text().startswith("# alice's pip\n[global]\ntimeout")

    old_used, new_used = used_bytes(old_fs), used_bytes(new_fs)
    done = call(fleet, name, args, tmp_path)
    assert done["changed"] and not done["failed"], done.get("msg")
    move = done["migration"]
    assert used_bytes(new_fs) - new_used == move["copy_bytes"] > 300000
    assert old_used - used_bytes(old_fs) == move["old_fs_gain_bytes"] == move["cache_disk_bytes"]
    assert conf.read_text() == ("# alice's pip\n[global]\ncache-dir = /srv/pipdisk/alice\ntimeout = 30\n\n"
                                "[install]\n; compile later\nno-compile = yes\n")
    assert not (old_fs / "pip").exists(), "the old cache is gone"
    st = os.stat(str(new_fs / "alice"))
    assert (st.st_uid, st.st_gid) == ALICE
    assert all(os.lstat(os.path.join(d, f)).st_uid == 1001 for d, _ds, fs in os.walk(str(new_fs / "alice")) for f in fs)

    assert as_alice(fleet, name, "pip cache dir") == "/srv/pipdisk/alice"
    wheel(fleet, name, "pkgcache_other")
    assert cached_wheels(new_fs / "alice") == ["pkgcache_demo-1.0-py3-none-any.whl",
                                               "pkgcache_other-1.0-py3-none-any.whl"]
    assert not (old_fs / "pip").exists(), "pip did not go back to the old cache"

    again = call(fleet, name, args, tmp_path)
    assert again["changed"] is False and again["migration"] is None, again


def test_a_higher_precedence_setting_is_named_and_nothing_changes(host, tmp_path):
    fleet, name, root = host
    environment = root / "etc/environment"
    before = environment.read_text() if environment.exists() else ""
    environment.write_text(before + "PIP_CACHE_DIR=/tmp/elsewhere\n")
    try:
        args = {"scope": "system", "user": "alice", "cache_dir": "/srv/shared-pip"}
        result = call(fleet, name, args, tmp_path)
        assert result["failed"], result
        assert "pip install would use /tmp/elsewhere (from PIP_CACHE_DIR)" in result["msg"], result["msg"]
        assert "a setting of higher precedence wins" in result["msg"]
        assert not (root / "etc/pip.conf").exists()
        assert as_alice(fleet, name, "pip cache dir") == "/tmp/elsewhere"
    finally:
        environment.write_text(before)


def uv_install(fleet, host, project, user="alice"):
    """``uv pip install`` from the local index as a user: uv builds the sdist and caches it."""
    return as_alice(fleet, host, "uv pip install --no-index --find-links %s %s --target /tmp/uv-%s-%s "
                                 "--python python3" % (INDEX, project, user, project), user)


def test_a_users_uv_cache_moves_under_uvs_lock_and_uv_uses_the_new_one(host, disks, tmp_path):
    fleet, name, root = host
    old_fs = disks.tmpfs(root / "home/alice/.cache", "size=64m,uid=1001,gid=1001,mode=0700")
    new_fs = disks.tmpfs(root / "srv/uvdisk", "size=64m")
    uv_install(fleet, name, "pkgcache_demo")
    assert as_alice(fleet, name, "uv cache dir") == "/home/alice/.cache/uv"
    archives = sorted(os.listdir(str(old_fs / "uv/archive-v0")))
    assert len(archives) == 1
    args = {"tool": "uv", "user": "alice", "cache_dir": "/srv/uvdisk/alice", "migrate": True}

    with open(str(old_fs / "uv/.lock")) as lock:  # as a running uv holds it
        fcntl.flock(lock, fcntl.LOCK_EX)
        refused = call(fleet, name, args, tmp_path)
    assert refused["failed"] and "locked by a running uv" in refused["msg"], refused
    assert not (root / "home/alice/.config/uv/uv.toml").exists()

    old_used, new_used = used_bytes(old_fs), used_bytes(new_fs)
    done = call(fleet, name, args, tmp_path)
    assert done["changed"] and not done["failed"], done.get("msg")
    move = done["migration"]
    assert move["method"] == "copy"
    assert used_bytes(new_fs) - new_used == move["copy_bytes"] > 0
    assert old_used - used_bytes(old_fs) == move["old_fs_gain_bytes"] == move["cache_disk_bytes"]
    assert (root / "home/alice/.config/uv/uv.toml").read_text() == 'cache-dir = "/srv/uvdisk/alice"\n'
    assert os.stat(str(root / "home/alice/.config/uv/uv.toml")).st_uid == 1001
    assert not (old_fs / "uv").exists()

    assert as_alice(fleet, name, "uv cache dir") == "/srv/uvdisk/alice"
    uv_install(fleet, name, "pkgcache_other")
    assert len(os.listdir(str(new_fs / "alice/archive-v0"))) == 2
    assert archives[0] in os.listdir(str(new_fs / "alice/archive-v0"))
    assert not (old_fs / "uv").exists()
    assert call(fleet, name, args, tmp_path)["changed"] is False


def test_the_relocate_role_moves_pip_and_uv_caches_in_one_run_after_a_check_mode_plan(host, tmp_path):
    fleet, name, root = host
    wheel(fleet, name, "pkgcache_demo", "bob")
    uv_install(fleet, name, "pkgcache_demo", "bob")
    before = dict((tool, cached_wheels(root / "home/bob/.cache" / tool)) for tool in ("pip", "uv"))
    assert before["pip"] and os.listdir(str(root / "home/bob/.cache/uv/archive-v0"))
    variables = {"pkgcache_target": name, "pkgs_relocate_tool_caches": [
        {"user": "bob", "cache_dir": "/srv/bob/pip"}, {"tool": "uv", "user": "bob", "cache_dir": "/srv/bob/uv"}]}

    preview = run_job(fleet, tmp_path / "preview", "relocate", check=True, extravars=variables)
    assert (preview.status, preview.rc) == ("successful", 0), preview.stdout[-3000:]
    plan = task_results(preview, "Show the relocation plan")[name]["msg"]
    assert plan == ["/home/bob/.config/pip/pip.conf: pip cache /srv/bob/pip; would create /srv/bob/pip; would move "
                    "/home/bob/.cache/pip -> /srv/bob/pip by rename, old filesystem gains 0 B",
                    "/home/bob/.config/uv/uv.toml: uv cache /srv/bob/uv; would create /srv/bob/uv; would move "
                    "/home/bob/.cache/uv -> /srv/bob/uv by rename, old filesystem gains 0 B"], plan
    assert not (root / "srv/bob").exists()

    job = run_job(fleet, tmp_path / "real", "relocate", extravars=variables)
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    assert as_alice(fleet, name, "pip cache dir", "bob") == "/srv/bob/pip"
    assert as_alice(fleet, name, "uv cache dir", "bob") == "/srv/bob/uv"
    assert cached_wheels(root / "srv/bob/pip") == before["pip"]
    assert not (root / "home/bob/.cache/pip").exists() and not (root / "home/bob/.cache/uv").exists()
    assert os.stat(str(root / "srv/bob/uv")).st_uid == 1002


def test_pip_cache_dir_in_etc_environment_reaches_every_session_and_absent_takes_it_back(host, tmp_path):
    fleet, name, root = host
    environment = root / "etc/environment"
    before = environment.read_text() if environment.exists() else ""
    environment.write_text(before + "# site settings\nLANG=C.UTF-8\n")
    kept = environment.read_text()
    args = {"scope": "environment", "cache_dir": "/tmp/pip-everyone", "mode": "1777"}
    try:
        done = call(fleet, name, args, tmp_path)
        assert done["changed"] and not done["failed"], done.get("msg")
        assert done["sources"]["install"] == "PIP_CACHE_DIR" and done["created"] == ["/tmp/pip-everyone"]
        assert environment.read_text() == kept + 'PIP_CACHE_DIR="/tmp/pip-everyone"\n'
        assert as_alice(fleet, name, "pip cache dir", "carol") == "/tmp/pip-everyone"
        assert call(fleet, name, args, tmp_path)["changed"] is False

        gone = call(fleet, name, {"scope": "environment", "state": "absent"}, tmp_path)
        assert gone["changed"] and gone["cache_dir"] == "/root/.cache/pip", gone
        assert environment.read_text() == kept
        assert as_alice(fleet, name, "pip cache dir", "carol") == "/home/carol/.cache/pip"
    finally:
        environment.write_text(before)
