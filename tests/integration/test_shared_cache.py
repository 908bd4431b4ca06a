"""A conda cache alice and bob share, on an SSH test host (issue 18, shared caches).

The role runs over SSH as root; then alice and bob install packages the way conda does (their
own processes, ``su`` with umask 022, conda's writability rule picking the cache, see
``conda_style_install.py``).  Drift that users and extraction leave (or that someone introduces) is
found by the module's audit and repaired by the fix; the read-only variant sends their downloads to
their own caches; and conda_clean on the shared cache runs with its owner's credentials and keeps
what bob's environment records name.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile

import pytest

from decoys import checksums
from test_conda_pkgs_dirs import call
from testfleet.fleet import running

from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_config_edit import read_items

ALICE, BOB, CAROL = 1001, 1002, 1003
INSTALLER = "/usr/local/lib/conda_style_install.py"
CHANNEL = "/srv/channel"
SHARED = "/srv/conda/pkgs"


def package(name):
    """A small real conda package: info/index.json and one file, modes as conda-build writes them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as archive:
        for path, data in (("info/index.json", json.dumps({"name": name.split("-")[0]}).encode()),
                           ("lib/%s.py" % name.split("-")[0], b"VALUE = 1\n")):
            for directory in (os.path.dirname(path),):
                entry = tarfile.TarInfo(directory)
                entry.type, entry.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(entry)
            entry = tarfile.TarInfo(path)
            entry.size, entry.mode = len(data), 0o644
            archive.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def host(fleet_state_factory):
    with running(fleet_state_factory("shared"), 1, ("single_root",)) as fleet:
        name = fleet.hosts[0]
        root = fleet.root_of(name)
        shutil.copyfile(os.path.join(os.path.dirname(__file__), "conda_style_install.py"), str(root) + INSTALLER)
        os.makedirs(str(root) + CHANNEL)
        for dist in ("numpy-1.0-0", "scipy-1.0-0", "pandas-1.0-0"):
            with open("%s%s/%s.tar.bz2" % (root, CHANNEL, dist), "wb") as handle:
                handle.write(package(dist))
        yield fleet, name, root


def role(host, tmp_path, **variables):
    """Run the shared_cache role as root over SSH; the play's recap."""
    fleet, name, _root = host
    playbook = tmp_path / "shared.yml"
    playbook.write_text("- hosts: all\n  become: true\n  gather_facts: false\n"
                        "  roles:\n    - role: pkgcache.fleet.shared_cache\n")
    done = fleet.playbook(str(playbook), "-l", name, "-e", json.dumps(variables))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return done.stdout


def install(host, user, dist, pkgs_dirs):
    """``user`` installs ``dist`` conda's way; the cache it went to, or the failure text."""
    fleet, name, _root = host
    command = "su %s -c 'python3 %s %s/%s.tar.bz2 https://repo.invalid/%s.tar.bz2 %s'" % (
        user, INSTALLER, CHANNEL, dist, dist, " ".join(pkgs_dirs))
    result = fleet.run_module(name, "ansible.builtin.command", command, become=True)[name]
    if result.get("rc") != 0:
        return result.get("stderr", "") + result.get("msg", "")
    return json.loads(result["stdout"])["cache"]


def audit(host, tmp_path, path, check=False, **args):
    """The module's result (over ansible-runner, so diff and warnings survive)."""
    return call(host[0], host[1], dict(path=path, group="conda", **args), tmp_path, check=check,
                module="pkgcache.fleet.conda_shared_cache")


def test_two_users_share_a_writable_cache_and_its_drift_is_found_and_repaired(host, tmp_path):
    fleet, name, root = host
    role(host, tmp_path, shared_cache_path=SHARED, shared_cache_group="conda", shared_cache_users=["alice", "bob"])
    shared = root / SHARED.lstrip("/")
    st = os.stat(str(shared))
    assert oct(st.st_mode & 0o7777) == oct(0o2775)
    assert install(host, "alice", "numpy-1.0-0", [SHARED]) == SHARED
    assert install(host, "bob", "scipy-1.0-0", [SHARED]) == SHARED
    assert (shared / "urls.txt").read_text().splitlines() == [
        "https://repo.invalid/numpy-1.0-0.tar.bz2", "https://repo.invalid/scipy-1.0-0.tar.bz2"]
    # The packages' own 0755 directories: bob cannot re-extract alice's package yet.
    assert "Permission denied" in install(host, "bob", "numpy-1.0-0", [SHARED])

    # Drift someone introduces: a file not group-writable, a file of carol's (not a member),
    # urls.txt no member can append to.
    os.chmod(str(shared / "scipy-1.0-0.tar.bz2"), 0o644)
    os.chown(str(shared / "numpy-1.0-0.tar.bz2"), CAROL, CAROL)
    os.chmod(str(shared / "urls.txt"), 0o644)
    found = audit(host, tmp_path, SHARED)
    assert not found["changed"] and not found["failed"], found
    assert found["acl_supported"] is True
    whats = dict((d["path"], d["what"]) for d in found["drift"])
    assert whats[SHARED + "/scipy-1.0-0.tar.bz2"] == ["mode"]
    assert whats[SHARED + "/numpy-1.0-0.tar.bz2"] == ["owner", "group"]
    assert whats[SHARED + "/urls.txt"] == ["mode"]
    assert whats[SHARED + "/numpy-1.0-0/info"] == ["setgid", "mode"]  # the archive's 0755, applied by chmod
    assert SHARED + "/numpy-1.0-0" not in whats  # made by extraction, not in the archive: the ACL's bits
    assert found["conda_writable"] == {"alice": False, "bob": False, "root": True}

    before = checksums(shared)
    planned = audit(host, tmp_path, SHARED, state="fixed", check=True)
    assert planned["changed"] and checksums(shared) == before, "check mode changed nothing"
    assert planned["drift"] == found["drift"]
    assert SHARED + "/urls.txt: root:conda 0644" in planned["diff"]["before"]
    assert SHARED + "/urls.txt: root:conda 0664" in planned["diff"]["after"]

    role(host, tmp_path, shared_cache_path=SHARED, shared_cache_group="conda", shared_cache_users=["alice", "bob"])
    after = checksums(shared)
    assert set(p for p in before if before[p] != after[p]) == set(
        os.fsencode(os.path.relpath(d["path"], SHARED)) for d in found["drift"])
    assert after[b"numpy-1.0-0.tar.bz2"][1] == 0, "carol's file goes to the declared owner, nobody else"
    assert after[b"scipy-1.0-0.tar.bz2"][1] == BOB, "a member keeps what is theirs"
    again = audit(host, tmp_path, SHARED, state="fixed")
    assert not again["changed"] and again["drift_count"] == 0
    assert again["conda_writable"] == {"alice": True, "bob": True, "root": True}
    assert install(host, "bob", "numpy-1.0-0", [SHARED]) == SHARED


def test_read_only_cache_sends_downloads_to_each_users_own_cache(host, tmp_path):
    fleet, name, root = host
    readonly = "/srv/conda/ro-pkgs"
    role(host, tmp_path, shared_cache_path=readonly, shared_cache_group="conda", shared_cache_users=["alice", "bob"])
    assert install(host, "alice", "pandas-1.0-0", [readonly]) == readonly  # filled while still writable
    role(host, tmp_path, shared_cache_path=readonly, shared_cache_group="conda", shared_cache_access="read_only",
         shared_cache_root="/opt/conda")
    pkgs_dirs = read_items((root / "opt/conda/.condarc").read_text())
    assert pkgs_dirs == [readonly, "~/.conda/pkgs"]
    shared = root / readonly.lstrip("/")
    assert (shared / "pandas-1.0-0.tar.bz2").stat().st_uid == 0
    before = checksums(shared)
    assert install(host, "alice", "numpy-1.0-0", pkgs_dirs) == "/home/alice/.conda/pkgs"
    assert install(host, "bob", "pandas-1.0-0", pkgs_dirs) == "/home/bob/.conda/pkgs"
    assert checksums(shared) == before
    assert (root / "home/alice/.conda/pkgs/numpy-1.0-0/info/index.json").stat().st_uid == ALICE
    found = audit(host, tmp_path, readonly, access="read_only")
    assert found["drift_count"] == 0 and found["conda_writable"] == {"alice": False, "bob": False, "root": True}
    recap = role(host, tmp_path, shared_cache_path=readonly, shared_cache_group="conda", shared_cache_access="read_only",
                 shared_cache_root="/opt/conda", shared_cache_users=["alice", "bob"])
    assert "changed=0" in recap, "idempotent"


def bobs_environment(root, prefix, dist, cache):
    """An environment of bob's whose record names ``dist`` in ``cache`` (files copied, so only the
    record protects the package), registered in his environments.txt."""
    env = root / prefix.lstrip("/")
    (env / "conda-meta").mkdir(parents=True)
    (env / "conda-meta/history").write_text("")
    name, version, build = dist.rsplit("-", 2)
    record = {"name": name, "version": version, "build": build, "fn": dist + ".tar.bz2",
              "url": "https://repo.invalid/%s.tar.bz2" % dist, "files": [],
              "extracted_package_dir": "%s/%s" % (cache, dist), "link": {"source": "%s/%s" % (cache, dist), "type": 3}}
    (env / "conda-meta" / (dist + ".json")).write_text(json.dumps(record))
    registry = root / "home/bob/.conda/environments.txt"
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_text(prefix + "\n")
    for path in [env, *env.rglob("*"), registry.parent, registry]:
        os.lchown(str(path), BOB, BOB)


def test_conda_clean_of_a_shared_cache_runs_as_its_owner_and_keeps_what_bobs_environment_names(host, tmp_path):
    fleet, name, root = host
    team = "/srv/conda/team-pkgs"
    variables = dict(shared_cache_path=team, shared_cache_group="conda", shared_cache_owner="carol",
                     shared_cache_users=["alice", "bob", "carol"])
    role(host, tmp_path, **variables)
    assert install(host, "alice", "numpy-1.0-0", [team]) == team
    assert install(host, "bob", "scipy-1.0-0", [team]) == team
    bobs_environment(root, "/home/bob/envs/analysis", "scipy-1.0-0", team)
    args = {"pkgs_dirs": [team], "targets": ["packages"]}
    cache = root / team.lstrip("/")

    # The cache is carol's: removal runs as carol.  The package leaves its name whole (renamed into the
    # trash), but alice's 0755 directories inside it stop carol, as they would not stop root.
    refused = call(fleet, name, dict(args), tmp_path, module="pkgcache.fleet.conda_clean")
    assert refused["failed"] and "Permission denied" in refused["msg"], refused
    assert not (cache / "numpy-1.0-0").exists()
    assert [p.name for p in (cache / ".trash").glob("numpy-1.0-0.*/lib/numpy.py")], "left as carol could not remove it"
    assert (cache / "scipy-1.0-0/info/index.json").is_file()

    # The fix gives the group its bits back (in the trash too); now carol's clean finishes the job.
    role(host, tmp_path, **variables)
    done = call(fleet, name, dict(args, targets=["packages", "trash"]), tmp_path, module="pkgcache.fleet.conda_clean")
    assert not done["failed"], done.get("msg")
    # The trash target also takes mamba's trash in every environment of the host (the shared test
    # host's fixture plants some at random), so only what left this cache is compared.
    in_team = [p for p in done["removed"] if p.startswith(team + "/")]
    assert [p.rsplit(".", 2)[0] for p in in_team] == [team + "/.trash/numpy-1.0-0"], done["removed"]
    assert not list((cache / ".trash").glob("numpy-1.0-0.*"))
    assert (cache / "scipy-1.0-0/info/index.json").is_file()
    kept = [k for plan in done["caches"] for k in plan["keep"] if team + "/scipy-1.0-0" in k["paths"]]
    assert kept and "referenced by 1 environment record" in kept[0]["reason"], done["caches"]
