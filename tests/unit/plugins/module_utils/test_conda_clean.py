# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda_clean on real fixture hosts: plans, policies, safety against symlinks and SIGKILL."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import random
import re
import signal
import time

import pytest

from condafab.layouts import DEFAULT_USERS, LAYOUTS, ROOT_USER

from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_clean import TARGETS, Policy, clean
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host

from .hostroot import host_users, in_root, require_root
from .killpoints import forked, kill_before

USERS = [ROOT_USER] + list(DEFAULT_USERS)
ALL = sorted(TARGETS)


def run_clean(targets=ALL, check_mode=False, roots=(), pkgs_dirs=(), purge=False, target=None, **policy):
    host = Host.load(host_users(USERS), roots)
    return clean(host, set(targets), Policy(**policy), roots, pkgs_dirs, check_mode, purge=purge, target=target)


def build(tmp_path, layout, seed=5, **kwargs):
    """A fixture host whose partial downloads are stale (the builder writes them "now", which
    would mark their caches busy)."""
    fsroot = tmp_path / "host"
    manifest = LAYOUTS[layout](fsroot, seed, list(DEFAULT_USERS), **kwargs)
    hours_ago = time.time() - 7200
    for path, cache in manifest.caches.items():
        for name in cache.partial:
            os.utime(str(manifest.real(path) / name), (hours_ago, hours_ago))
    return fsroot, manifest


def removed_of(result, category):
    return sorted(os.path.basename(i["path"]) for p in result["plan"] for i in p["remove"] if i["category"] == category)


def env_files_resolve(fsroot, prefix):
    """Every name in an env resolves: hard links exist, symlinks lead to an existing file."""
    broken = []
    top = str(fsroot) + prefix
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                target = os.readlink(path)
                if not os.path.exists(str(fsroot) + target if target.startswith("/") else path):
                    broken.append(path)
    return broken


def test_check_mode_plans_exactly_what_a_real_run_removes_and_reruns_are_noops(tmp_path):
    fsroot, manifest = build(tmp_path, "multi_user")
    preview = in_root(fsroot, run_clean, check_mode=True)
    assert preview["changed"] and preview["removed"] == []
    assert all(os.path.lexists(manifest.real(p)) for p in preview["paths"])
    real = in_root(fsroot, run_clean)
    assert real["plan"] == preview["plan"]
    assert sorted(real["removed"]) == sorted(preview["paths"])
    assert not any(os.path.lexists(manifest.real(p)) for p in real["removed"])
    again = in_root(fsroot, run_clean)
    assert again["changed"] is False and again["paths"] == []


def test_removes_what_conda_clean_lists_except_packages_in_use(tmp_path):
    fsroot, manifest = build(tmp_path, "softlinked_env")
    result = in_root(fsroot, run_clean)
    cache = manifest.cache("/opt/conda/pkgs")
    assert removed_of(result, "unused") == sorted(cache.orphans)
    assert removed_of(result, "tarballs") == sorted(cache.tarballs)
    assert removed_of(result, "logs") == sorted(cache.logs)
    assert removed_of(result, "index_cache") == sorted(cache.index_cache)
    kept = dict((os.path.basename(k["path"]), k["reason"]) for p in result["plan"] for k in p["kept"])
    for dist in cache.softlink_only:
        assert "softlink" in kept[dist]
    for env in manifest.envs.values():
        assert env_files_resolve(fsroot, env.prefix) == [], env.prefix
        for dist in env.packages:
            assert (fsroot / env.prefix.lstrip("/") / "conda-meta" / (dist + ".json")).exists()


def test_a_cache_without_urls_txt_is_cleaned_like_any_other(tmp_path):
    """conda clean skips a cache without urls.txt without a word; its packages still fill the
    disk, so it is planned like any other and stays without urls.txt."""
    fsroot, manifest = build(tmp_path, "single_root", urls_txt=False)
    cache = manifest.cache("/opt/conda/pkgs")
    assert not cache.writable and not (fsroot / "opt/conda/pkgs/urls.txt").exists()
    result = in_root(fsroot, run_clean)
    assert removed_of(result, "unused") == sorted(cache.orphans) != []
    assert removed_of(result, "tarballs") == sorted(cache.tarballs)
    assert not (fsroot / "opt/conda/pkgs/urls.txt").exists()
    for env in manifest.envs.values():
        assert env_files_resolve(fsroot, env.prefix) == [], env.prefix


def test_policies_keep_latest_exclude_and_min_age(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    cache = manifest.cache("/opt/conda/pkgs")
    orphans = sorted(cache.orphans)
    assert len(orphans) >= 2
    month_ago = time.time() - 30 * 86400
    for dist in orphans:
        os.utime(str(manifest.real("/opt/conda/pkgs/" + dist)), (month_ago, month_ago))
    fresh = orphans[0]
    os.utime(str(manifest.real("/opt/conda/pkgs/" + fresh)), None)
    result = in_root(fsroot, run_clean, ["packages"], check_mode=True, min_age=86400,
                     exclude=[orphans[1].rsplit("-", 2)[0] + "-*"])
    removed = removed_of(result, "unused")
    assert fresh not in removed and orphans[1] not in removed
    assert sorted(removed + [fresh, orphans[1]]) == orphans

    tarballs = list(cache.tarballs)
    names = {}
    for fn in tarballs:
        names.setdefault(fn.rsplit("-", 2)[0], []).append(fn)
    multi = dict((n, fns) for n, fns in names.items() if len(fns) > 1)
    assert multi, "layout has no package with several versions"
    result = in_root(fsroot, run_clean, ["tarballs"], check_mode=True, keep_latest=1)
    removed = removed_of(result, "tarballs")
    for name, fns in names.items():
        assert len([fn for fn in fns if fn not in removed]) == 1, name


def test_gates_and_busy_caches_change_nothing(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    gated = in_root(fsroot, run_clean, when_free_below=("percent", 0.0))
    assert gated["changed"] is False and gated["removed"] == []
    # Sizes in binary units and the threshold as a policy writes it, not raw byte counts.
    sized = r"\d+(?:\.\d)? (?:B|KiB|MiB|GiB|TiB)"
    assert all(re.match(r"^free space %s is not below 0%%$" % sized, p["skipped"]) for p in gated["plan"]), gated
    big = in_root(fsroot, run_clean, when_cache_above=1 << 40)
    assert big["changed"] is False
    assert all(re.match(r"^cache uses %s, not above 1T$" % sized, p["skipped"]) for p in big["plan"]), big
    (manifest.real("/opt/conda/pkgs") / "downloading-1.0-0.conda.partial").write_bytes(b"\0" * 100)
    busy = in_root(fsroot, run_clean)
    plan = next(p for p in busy["plan"] if p["path"] == "/opt/conda/pkgs")
    assert "download in progress" in plan["skipped"] and plan["remove"] == []


def test_one_users_malformed_config_restricts_the_clean_to_what_stays_safe(tmp_path):
    """Any user can break their own ~/.condarc; that must not switch cleaning off for the host,
    nor let packages their unknown environments may use be removed."""
    fsroot, manifest = build(tmp_path, "multi_user", malformed=True)
    owner = os.path.basename(os.path.dirname(manifest.malformed_condarc[0]))
    pkgs = manifest.real("/opt/conda/pkgs")
    extracted = sorted(p.name for p in pkgs.iterdir() if (p / "info" / "index.json").exists())
    with pytest.raises(RuntimeError, match="refusing to purge"):
        in_root(fsroot, run_clean, purge=True)
    result = in_root(fsroot, run_clean)
    assert owner in result["restricted"] and "no extracted package is removed" in result["restricted"]
    assert removed_of(result, "unused") == [] and removed_of(result, "tarballs")
    assert sorted(p.name for p in pkgs.iterdir() if (p / "info" / "index.json").exists()) == extracted
    kept = [k for p in result["caches"] for k in p["keep"] if k["reason"] == result["restricted"]]
    assert kept and all(k["category"] == "unused" for k in kept)


def test_bad_input_fails_and_deletes_nothing(tmp_path):
    fsroot, manifest = build(tmp_path, "multi_user")
    system = fsroot / "etc" / "conda" / "condarc"
    system.parent.mkdir(parents=True, exist_ok=True)
    system.write_text("pkgs_dirs: [unclosed\n  - : :\n")
    before = sorted(os.listdir(str(manifest.real("/opt/conda/pkgs"))))
    with pytest.raises(RuntimeError, match="malformed conda config"):
        in_root(fsroot, run_clean)
    assert sorted(os.listdir(str(manifest.real("/opt/conda/pkgs")))) == before

    fsroot, manifest = build(tmp_path / "b", "single_root")
    (fsroot / "srv" / "notacache").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="is not a conda package cache"):
        in_root(fsroot, run_clean, pkgs_dirs=["/srv/notacache"])


def test_a_named_cache_no_config_lists_is_judged_like_the_others(tmp_path):
    """A shared cache named by the operator alone (pkgs_dirs option, urls.txt present): its unused
    packages are planned, not a KeyError, and what an environment names stays."""
    fsroot, manifest = build(tmp_path, "single_root")
    source = manifest.real("/opt/conda/pkgs")
    team = fsroot / "srv" / "team" / "pkgs"
    team.mkdir(parents=True)
    (team / "urls.txt").write_text("")
    used = manifest.cache("/opt/conda/pkgs").extracted[0]
    os.system("cp -a %s %s" % (source / used, team / "orphan-1.0-0"))
    result = in_root(fsroot, run_clean, targets=["packages"], pkgs_dirs=["/srv/team/pkgs"])
    assert removed_of(result, "unused") == ["orphan-1.0-0"]
    assert not (team / "orphan-1.0-0").exists() and (source / used).is_dir()


def test_symlinks_inside_user_caches_never_lead_removal_outside(tmp_path):
    require_root()
    fsroot, manifest = build(tmp_path, "multi_user")
    etc = fsroot / "srv" / "fake-etc"
    (etc / "sub").mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (etc / "sub" / "shadow").write_text("secret\n")
    user_cache = manifest.real("/home/alice/.conda/pkgs")
    # An orphan of alice's own: a copy of one of her packages under a dist name nothing references.
    victim = user_cache / "victim-1.0-0"
    os.system("cp -a %s %s" % (user_cache / manifest.cache("/home/alice/.conda/pkgs").extracted[0], victim))
    os.symlink("/srv/fake-etc", str(victim / "lib-escape"))
    os.symlink("/srv/fake-etc/sub", str(user_cache / ".logs" / "escape-log"))
    os.symlink("/srv/fake-etc/passwd", str(user_cache / "escape.tar.bz2"))
    os.symlink("/srv/fake-etc", str(user_cache / "cache" / "escape"))
    for dirpath, dirs, files in os.walk(str(user_cache)):
        for name in dirs + files:
            os.lchown(os.path.join(dirpath, name), 1001, 1001)
    before = sorted((p, open(os.path.join(p), "rb").read()) for p in
                    [str(etc / "passwd"), str(etc / "sub" / "shadow")])
    result = in_root(fsroot, run_clean)
    assert str(victim).replace(str(fsroot), "") in result["removed"]
    after = sorted((p, open(os.path.join(p), "rb").read()) for p in
                   [str(etc / "passwd"), str(etc / "sub" / "shadow")])
    assert after == before
    assert os.path.isdir(str(etc / "sub"))
    st = os.stat(str(user_cache))
    assert (st.st_uid, st.st_gid) == (1001, 1001)


def _complete(package_dir):
    """An extracted package conda would treat as valid has every file its paths.json lists."""
    with open(os.path.join(package_dir, "info", "paths.json")) as handle:
        paths = json.load(handle)["paths"]
    return all(os.path.lexists(os.path.join(package_dir, p["_path"])) for p in paths)


_FS_CALLS = ("unlink", "rmdir", "rename")


def _clean_killed_at(fsroot, step, report_fd=None):
    """Child process: chroot, run a real cleanup, and SIGKILL itself just before its ``step``-th
    filesystem change (unlink, rmdir or rename), so kills land at exact points of the deletion,
    inside a package's removal too.  With ``step`` None it only counts the changes."""
    calls = kill_before(step, _FS_CALLS)
    os.chroot(str(fsroot))
    os.chdir("/")
    try:
        run_clean()
        if report_fd is not None:
            os.write(report_fd, str(calls[0]).encode())
    finally:
        os._exit(0)  # pylint: disable=protected-access


def test_sigkill_at_any_point_leaves_whole_packages_and_the_next_run_finishes(tmp_path):
    require_root()
    rng = random.Random(1234)
    fsroot, manifest = build(tmp_path, "multi_user", seed=9)
    pristine = tmp_path / "pristine"
    os.system("cp -a %s %s" % (fsroot, pristine))
    _status, steps = forked(lambda report_fd: _clean_killed_at(fsroot, None, report_fd))
    assert steps > 50, "too few filesystem changes to kill in between"
    orphan_paths = [manifest.real(c) / d for c, m in manifest.caches.items() for d in m.orphans]
    mid_package = 0
    for trial, step in enumerate(sorted(rng.sample(range(1, steps + 1), 20))):
        os.system("rm -rf %s && cp -a %s %s" % (fsroot, pristine, fsroot))
        pid = os.fork()
        if pid == 0:
            _clean_killed_at(fsroot, step)
        _pid, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (trial, step)
        for cache in manifest.caches:
            top = manifest.real(cache)
            for name in os.listdir(str(top)):
                if os.path.isfile(str(top / name / "info" / "index.json")):
                    assert _complete(str(top / name)), "half-deleted package %s/%s (step %d)" % (cache, name, step)
            trash = top / ".trash"
            mid_package += trash.is_dir() and any(os.path.isdir(str(trash / n)) for n in os.listdir(str(trash)))
        for env in manifest.envs.values():
            assert env_files_resolve(fsroot, env.prefix) == [], (env.prefix, step)
        finish = in_root(fsroot, run_clean)
        assert not finish["errors"]
        for cache, intended in manifest.caches.items():
            left = set(os.listdir(str(manifest.real(cache))))
            assert not left & set(intended.orphans), (cache, step)
            assert ".trash" not in left or not os.listdir(str(manifest.real(cache) / ".trash"))
        assert not any(os.path.lexists(str(p)) for p in orphan_paths)
    assert mid_package >= 2, "no kill landed inside a package's removal"


def test_purge_empties_caches_but_keeps_softlinked_packages_and_urls(tmp_path):
    fsroot, manifest = build(tmp_path, "softlinked_env")
    result = in_root(fsroot, run_clean, purge=True)
    assert result["changed"]
    cache = manifest.cache("/opt/conda/pkgs")
    left = sorted(os.listdir(str(manifest.real("/opt/conda/pkgs"))))
    soft = sorted(d for d, envs in cache.referenced_by.items() if "/opt/conda/envs/linked" in envs)
    dirs = [".logs", ".trash", "cache"]  # emptied; conda recreates them anyway
    assert left == sorted(soft + ["urls", "urls.txt"] + dirs)
    for name in dirs:
        assert os.listdir(str(manifest.real("/opt/conda/pkgs/" + name))) == []
    for env in manifest.envs.values():
        assert env_files_resolve(fsroot, env.prefix) == [], env.prefix
    again = in_root(fsroot, run_clean, purge=True)
    assert again["changed"] is False


def test_a_process_working_inside_a_cache_is_found(tmp_path):
    from ansible_collections.pkgcache.fleet.plugins.module_utils._procs import process_using
    import subprocess
    cache = tmp_path / "pkgs"
    (cache / "pkg-1-0").mkdir(parents=True)
    assert process_using(str(cache)) is None
    worker = subprocess.Popen(["sleep", "60"], cwd=str(cache / "pkg-1-0"))
    try:
        found = process_using(str(cache))
        assert found is not None and found.startswith("%d (sleep)" % worker.pid)
    finally:
        worker.kill()
        worker.wait()
    holder = open(str(cache / "pkg-1-0" / "file"), "w")
    try:
        # Our own process is ignored: the module must not find itself busy.
        assert process_using(str(cache)) is None
    finally:
        holder.close()


def _clean_as(user, root, check_mode):
    """The clean of ``user``'s own installation, run as that user (inside the chroot), so a
    mode-000 directory cannot be read."""
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)
    host = Host.load([user], [root])
    return clean(host, set(ALL), Policy(), [root], (), check_mode)


def test_a_package_that_cannot_be_read_stops_the_clean_only_when_it_is_a_candidate(tmp_path):
    """Packages are sized when a cleanup considers them: an unreadable directory inside an
    unreferenced package stops the whole run (nothing deleted); one inside a package some
    environment uses is never read, so the run goes on."""
    fsroot, manifest = build(tmp_path, "two_installs")
    owner = host_users(DEFAULT_USERS[:1])[0]
    root = owner.home + "/miniforge3"
    cache = manifest.caches[root + "/pkgs"]
    used = sorted(set(cache.extracted) - set(cache.orphans))
    # A directory below the package's top: what makes it an extracted package stays readable.
    sealed = [manifest.real(root + "/pkgs/" + dist) / "lib" / "sealed" for dist in (cache.orphans[0], used[0])]
    for path in sealed:
        path.mkdir(parents=True, exist_ok=True)
    os.chmod(str(sealed[1]), 0)
    try:
        result = in_root(fsroot, _clean_as, owner, root, True)
        assert removed_of(result, "unused") == sorted(cache.orphans)
        os.chmod(str(sealed[0]), 0)
        before = sorted(os.listdir(str(manifest.real(root + "/pkgs"))))
        with pytest.raises(RuntimeError, match="not fully known.*%s" % cache.orphans[0]):
            in_root(fsroot, _clean_as, owner, root, False)
        assert sorted(os.listdir(str(manifest.real(root + "/pkgs")))) == before
    finally:
        for path in sealed:
            os.chmod(str(path), 0o755)
