"""rattler caches made by py-rattler itself: pixi-style workspaces, a global tool and a deleted
workspace installed from a file:// channel through one cache; what is in use comes from the
records, what goes is removed through the cleanup pipeline under rattler's own lock."""

import fcntl
import os
import re
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_envs, rattler_cache
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User
from ansible_collections.pkgcache.fleet.plugins.module_utils.rattler_cache import (
    Search, cache_location, find_environments, gather_facts, read_entry_lock, shared_extent_bytes)
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import broken_environments
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import OptionError
from ansible_collections.pkgcache.fleet.plugins.module_utils.rattler_clean import argument_spec, clean, clean_from_options
from condafab.channel import file_channel, rattler_install
from condafab.host import HostBuilder

pytest.importorskip("rattler")

BLOCK = 512


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    top = tmp_path_factory.mktemp("channel")
    catalog = HostBuilder(top / "host", seed=21).catalog(packages=16, files=4)
    return file_channel(catalog, top / "channel")


def install_home(channel, home):
    """alice's pixi world: two workspaces and a global tool through ~/.cache/rattler/cache; the
    second workspace is deleted afterwards.  ``{prefix: installed dist names}``."""
    pkgs = home / ".cache" / "rattler" / "cache" / "pkgs"
    installed = {}
    for prefix, specs in ((home / "src" / "app" / ".pixi" / "envs" / "default", ["numpy"]),
                          (home / "old" / "gone" / ".pixi" / "envs" / "default", ["git", "python"]),
                          (home / ".pixi" / "envs" / "tool", ["python_abi"])):
        installed[str(prefix)] = sorted(fn.rsplit(".tar.bz2", 1)[0].rsplit(".conda", 1)[0]
                                        for fn in rattler_install(channel, specs, prefix, pkgs))
    shutil.rmtree(home / "old")
    return pkgs, installed


def lstat_bytes(paths):
    """Blocks of every entry below ``paths`` (each inode once), counted here without the model."""
    seen, total = set(), 0
    for top in paths:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [""] + dirnames + filenames:
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * BLOCK
        if not os.path.isdir(top):
            total += os.lstat(top).st_blocks * BLOCK
    return total


@pytest.fixture
def alice(channel, tmp_path):
    home = tmp_path / "home" / "alice"
    pkgs, installed = install_home(channel, home)
    live = set(installed[str(home / "src/app/.pixi/envs/default")]) | set(installed[str(home / ".pixi/envs/tool")])
    gone = set(installed[str(home / "old/gone/.pixi/envs/default")]) - live
    assert live and gone, "the fixture must have packages of both kinds"
    return User("root", 0, 0, str(home)), pkgs, live, gone


def test_the_cache_is_where_pixi_looks(tmp_path):
    home = str(tmp_path)
    warn = pytest.fail
    assert cache_location(home, {}, warn) == {"configured": home + "/.cache/rattler/cache", "source": "default"}
    os.makedirs(home + "/.cache/pixi")
    assert cache_location(home, {}, warn)["configured"] == home + "/.cache/pixi"
    assert cache_location(home, {"XDG_CACHE_HOME": "/x"}, warn)["configured"] == "/x/rattler/cache"
    assert cache_location(home, {"RATTLER_CACHE_DIR": "/r"}, warn) == {"configured": "/r", "source": "RATTLER_CACHE_DIR"}
    both = {"RATTLER_CACHE_DIR": "/r", "PIXI_CACHE_DIR": "~/p"}
    assert cache_location(home, both, warn) == {"configured": home + "/p", "source": "PIXI_CACHE_DIR"}


def test_pixis_config_files_name_the_cache_root_in_pixis_order(tmp_path):
    home, etc = str(tmp_path / "home"), str(tmp_path / "etc")
    warnings = []
    for path, root in ((etc + "/pixi/config.toml", "/from/etc"), (home + "/.config/pixi/config.toml", "/from/user")):
        os.makedirs(os.path.dirname(path))
        with open(path, "w") as handle:
            handle.write("[mirrors]\nroot = '/not/this'\n[cache]\nnetfs-redirect = \"never\"\nroot = \"%s\"  # here\n" % root)

    def where(env):
        return cache_location(home, env, warnings.append, etc_dir=etc)

    assert where({}) == {"configured": "/from/user", "source": home + "/.config/pixi/config.toml"}
    os.makedirs(home + "/.pixi")
    with open(home + "/.pixi/config.toml", "w") as handle:
        handle.write("cache.root = '~/big'\n")
    assert where({})["configured"] == home + "/big"
    assert where({"PIXI_NO_CONFIG": "1"})["configured"] == home + "/.cache/rattler/cache"
    assert where({"PIXI_CONFIG_FILE": etc + "/pixi/config.toml"})["configured"] == "/from/etc"
    assert where({"RATTLER_CACHE_DIR": "/r"})["configured"] == "/r"
    with open(home + "/.pixi/config.toml", "w") as handle:
        handle.write("[cache]\nroot = \"\"\"\n/multi\"\"\"\n")
    assert where({})["configured"] == "/from/user" and "not a plain TOML string" in warnings[-1]


KEYS = st.sampled_from(["root", "conda-packages", "cache.root", "cache . root"])
TABLES = st.sampled_from(["", "[cache]", "[ cache ]", "[other]", "[cache.sub]", "[[cache]]"])
VALUES = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\"'\\"), max_size=12)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(TABLES, KEYS, VALUES, st.booleans(), st.booleans()), max_size=4))
def test_the_cache_root_read_is_the_one_tomllib_reads(tmp_path, lines):
    text, seen_tables, seen_keys = "", set(), set()
    for table, key, value, literal, comment in lines:
        if table:
            name = table.strip("[] ")
            if name in seen_tables:
                continue  # TOML forbids defining a table twice
            seen_tables.add(name)
            text += table + "\n"
        if (table, key.replace(" ", "")) in seen_keys:
            continue
        seen_keys.add((table, key.replace(" ", "")))
        quote = "'" if literal else '"'
        text += "%s = %s%s%s%s\n" % (key, quote, value, quote, "  # note" if comment else "")
    path = tmp_path / "config.toml"
    path.write_text(text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    cache = data.get("cache")
    expected = cache.get("root") if isinstance(cache, dict) else None
    assert rattler_cache.read_cache_root(str(path), pytest.fail) == expected


def test_environments_are_found_by_their_records_and_decide_what_is_in_use(alice):
    user, pkgs, live, gone = alice
    found = find_environments([user], {}, Search())
    assert sorted(found.prefixes) == [user.home + "/.pixi/envs/tool", user.home + "/src/app/.pixi/envs/default"]
    assert found.incomplete == []
    facts = gather_facts([user], {}, Search(), pytest.fail, list_packages=True)
    [(root, cache)] = list(facts["caches"].items())
    assert root == str(pkgs.parent) and cache["tool"] == "rattler" and cache["users"] == ["root"]
    used = {p["name"] for p in cache["packages"] if p["used_by"]}
    unused = {p["name"] for p in cache["packages"] if not p["used_by"]}
    assert (used, unused) == (live, gone)
    assert cache["unused_reclaimable_bytes"] == lstat_bytes([str(pkgs / n) for n in gone] + [str(pkgs / n) + ".lock" for n in gone])
    assert cache["sections"]["pkgs"]["disk_bytes"] == lstat_bytes([str(pkgs)])
    brief = gather_facts([user], {}, Search(), pytest.fail, list_packages=False)["caches"][root]
    assert brief["packages"] is None and (brief["in_use"], brief["unused"]) == (len(live), len(gone))
    for package in cache["packages"]:
        # rattler's .lock: a u64 revision and the archive's sha256, as cache_lock.rs writes them
        assert package["lock"]["revision"] >= 1 and len(package["lock"]["sha256"]) == 64


def test_a_depth_too_small_or_no_time_makes_the_search_incomplete_and_nothing_is_removed(alice):
    user, pkgs, _live, _gone = alice
    shallow = find_environments([user], {}, Search(depth=1))
    assert shallow.prefixes == [user.home + "/.pixi/envs/tool"] and shallow.incomplete == []
    before = sorted(os.listdir(str(pkgs)))
    result = clean([user], {}, Search(seconds=-1), [].append)
    assert result["changed"] is False and os.listdir(str(pkgs)) and sorted(os.listdir(str(pkgs))) == before
    assert "time limit" in result["caches"][0]["skipped"]


def test_clean_removes_exactly_the_unused_packages_with_their_locks_and_is_idempotent(alice):
    user, pkgs, live, gone = alice
    planned = clean([user], {}, Search(), pytest.fail, check_mode=True)
    expected = sorted(str(pkgs / n) for n in gone) + sorted(str(pkgs / n) + ".lock" for n in gone)
    assert sorted(i["path"] for i in planned["caches"][0]["remove"]) == sorted(expected)
    assert planned["planned_bytes"] == lstat_bytes(expected)
    kept = {os.path.basename(p): g["reason"] for g in planned["caches"][0]["keep"] for p in g["paths"]}
    assert sorted(kept) == sorted(live) and all(reason.startswith("used by " + user.home) for reason in kept.values())
    done = clean([user], {}, Search(), pytest.fail)
    assert not done["errors"], done["errors"]
    assert sorted(done["removed"]) == sorted(expected) and done["planned_bytes"] == planned["planned_bytes"]
    assert sorted(n for n in os.listdir(str(pkgs)) if not n.startswith(".")) == sorted(
        list(live) + [n + ".lock" for n in live])
    # what stays still installs offline into a new prefix without fetching: the cache is whole
    again = clean([user], {}, Search(), pytest.fail)
    assert again["changed"] is False and again["planned_bytes"] == 0


def listed_paths(prefix):
    """Every path the prefix's records list (py-rattler writes ``paths_data``), read here as JSON."""
    import json
    return sum((len(json.loads(p.read_text())["paths_data"]["paths"]) for p in (Path(prefix) / "conda-meta").glob("*.json")), 0)


def test_a_verified_clean_checks_the_environments_naming_the_cache_and_finds_py_rattlers_whole(alice):
    user, pkgs, _live, gone = alice
    touched = [user.home + "/.pixi/envs/tool", user.home + "/src/app/.pixi/envs/default"]
    # the check reads what py-rattler wrote: every listed file is looked at, none is a problem
    for prefix, health in conda_envs.health_of([conda_envs.prefix_environment(p) for p in touched]).items():
        assert health["healthy"] and health["checked_files"] == listed_paths(prefix) > 0, health
    preview = clean([user], {}, Search(), pytest.fail, check_mode=True, verify=True)
    assert preview["verified_environments"] == {"environments": touched, "checked": False, "unhealthy_before": [],
                                                "broken": []}
    done = clean([user], {}, Search(), pytest.fail, verify=True)
    assert sorted(os.path.basename(p) for p in done["removed"] if not p.endswith(".lock")) == sorted(gone)
    assert done["verified_environments"] == dict(preview["verified_environments"], checked=True)
    assert broken_environments(done) is None
    # nothing left to remove touches nothing; without the option nothing is verified
    assert clean([user], {}, Search(), pytest.fail, verify=True)["verified_environments"]["environments"] == []
    assert clean([user], {}, Search(), pytest.fail)["verified_environments"] is None


def test_a_clean_that_breaks_a_rattler_environment_names_it_and_its_problems(alice):
    """One package of the workspace's environment is soft-linked from the cache (rattler links so
    when neither reflinks nor hard links are allowed) and its record no longer says where it came
    from: the environment is whole, it names the cache for its other packages, and nothing tells
    the clean that the package is in use.  The verification catches what the removal broke."""
    import json
    user, pkgs, live, _gone = alice
    app = Path(user.home) / "src/app/.pixi/envs/default"
    tool_records = {p.stem for p in (Path(user.home) / ".pixi/envs/tool/conda-meta").glob("*.json")}
    [victim, *_rest] = sorted(p for p in (app / "conda-meta").glob("*.json")
                              if p.stem not in tool_records and json.loads(p.read_text())["paths_data"]["paths"])
    record = json.loads(victim.read_text())
    source = Path(record.pop("extracted_package_dir"))
    record.pop("package_tarball_full_path", None)
    (record.get("link") or {}).pop("source", None)
    files = [entry["_path"] for entry in record["paths_data"]["paths"]]
    for rel in files:
        (app / rel).unlink()
        os.symlink(str(source / rel), str(app / rel))
    victim.write_text(json.dumps(record))
    done = clean([user], {}, Search(), pytest.fail, verify=True)
    assert str(source) in done["removed"] and not done["errors"]
    verified = done["verified_environments"]
    assert verified["checked"] and str(app) in verified["environments"] and verified["unhealthy_before"] == []
    [broken] = verified["broken"]
    assert broken["path"] == str(app) and broken["problems"] == {"dangling": len(files)}
    assert sorted(d["path"] for d in broken["dangling"]) == sorted(files)
    assert broken_environments(done) == "environment(s) no longer whole after the clean: %s (%d dangling)" % (
        app, len(files))


def test_environment_facts_check_the_pixi_prefixes_the_rattler_search_finds(alice):
    from ansible_collections.pkgcache.fleet.plugins.module_utils import facts
    user, _pkgs, _live, _gone = alice
    params = dict((name, spec.get("default")) for name, spec in facts.argument_spec().items())
    found = {}
    for kinds in (["envs"], ["envs", "rattler"]):
        gathered = facts.gather([user], dict(params, gather=kinds), kinds, pytest.fail)
        found[len(kinds)] = dict((e["path"], e) for e in gathered["conda_envs"]["environments"] if e["tool"] == "rattler")
    assert found[1] == {}
    # one search serves both kinds: the environments checked are the ones the cache facts name
    assert sorted(found[2]) == sorted(gathered["rattler_cache"]["environments"])
    assert sorted(found[2]) == [user.home + "/.pixi/envs/tool", user.home + "/src/app/.pixi/envs/default"]
    for prefix, facts_of in found[2].items():
        assert facts_of["health"]["healthy"] and facts_of["health"]["checked_files"] == listed_paths(prefix) > 0
        assert facts_of["package_count"] == len(list((Path(prefix) / "conda-meta").glob("*.json")))


def test_an_install_holding_the_cache_lock_makes_the_cache_busy(alice):
    user, pkgs, _live, gone = alice
    with open(str(pkgs / ".cache.lock"), "r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = clean([user], {}, Search(), pytest.fail)
    assert result["changed"] is False and "cache.lock is held by another process" in result["caches"][0]["skipped"]
    assert all((pkgs / n).is_dir() for n in gone)


def test_a_prefix_named_by_the_operator_protects_its_packages(alice, channel, tmp_path):
    user, pkgs, _live, gone = alice
    elsewhere = tmp_path / "detached" / "env"
    rattler_install(channel, ["git"], elsewhere, pkgs)
    result = clean([user], {}, Search(prefixes=[str(elsewhere)]), pytest.fail, check_mode=True)
    assert str(elsewhere) in result["environments"]
    removed = {os.path.basename(i["path"]) for i in result["caches"][0]["remove"]}
    assert not any(name.startswith("git-") for name in removed)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=64))
def test_any_lock_file_reads_as_rattlers_layout_or_as_none(tmp_path, content):
    lock = tmp_path / "any.lock"
    lock.write_bytes(content)
    read = read_entry_lock(str(lock))
    if len(content) < 8:
        assert read is None
    else:
        sha = content[8:40].hex() if len(content) >= 40 else None
        assert read == (int.from_bytes(content[:8], "big"), sha)


def test_detached_environments_under_the_cache_root_protect_their_packages(alice, channel):
    user, pkgs, _live, _gone = alice
    detached = pkgs.parent / "envs" / "gone-5f3a" / "envs" / "default"
    rattler_install(channel, ["git"], detached, pkgs)
    result = clean([user], {}, Search(), pytest.fail, check_mode=True)
    assert str(detached) in result["environments"]
    assert not any(os.path.basename(i["path"]).startswith("git-") for i in result["caches"][0]["remove"])


@pytest.mark.parametrize("bad, message", [({"search_roots": ["src"]}, "'src' is not an absolute path"),
                                          ({"prefixes": ["~/env"]}, "'~/env' is not an absolute path"),
                                          ({"search_depth": -1}, "search_depth must not be negative"),
                                          ({"users": ["nobody-by-that-name"]}, "unknown user(s)")])
def test_bad_options_fail_before_anything_is_read(alice, bad, message):
    _user, pkgs, _live, _gone = alice
    before = sorted(os.listdir(str(pkgs)))
    params = dict((name, spec.get("default")) for name, spec in argument_spec().items())
    params.update(bad)
    with pytest.raises(OptionError, match=re.escape(message)):
        clean_from_options(params, pytest.fail, check_mode=False)
    assert sorted(os.listdir(str(pkgs))) == before


def test_a_pkgs_symlinked_elsewhere_is_neither_walked_nor_cleaned(alice, tmp_path):
    user, pkgs, _live, _gone = alice
    moved = tmp_path / "elsewhere"
    pkgs.rename(moved)
    pkgs.symlink_to(moved)
    before = sorted(os.listdir(str(moved)))
    facts = gather_facts([user], {}, Search(), pytest.fail, list_packages=True)
    [cache] = list(facts["caches"].values())
    assert cache["packages"] == [] and cache["usage"]["disk_bytes"] < lstat_bytes([str(moved)])
    result = clean([user], {}, Search(), pytest.fail)
    assert result["changed"] is False and "symlink is not followed" in result["caches"][0]["skipped"]
    assert sorted(os.listdir(str(moved))) == before


def test_entry_lock_layout_and_short_files(tmp_path):
    lock = tmp_path / "a.lock"
    lock.write_bytes((7).to_bytes(8, "big") + bytes(range(32)))
    assert read_entry_lock(str(lock)) == (7, bytes(range(32)).hex())
    lock.write_bytes((3).to_bytes(8, "big"))
    assert read_entry_lock(str(lock)) == (3, None)
    lock.write_bytes(b"\0\0")
    assert read_entry_lock(str(lock)) is None
    assert read_entry_lock(str(tmp_path / "absent.lock")) is None


# -- a reflink-capable filesystem: XFS with reflink=1 on a loop device -------------------------------


@pytest.fixture
def xfs(tmp_path):
    if os.geteuid() != 0 or not shutil.which("mkfs.xfs"):
        pytest.skip("needs root and mkfs.xfs (xfsprogs) for an XFS image on a loop device")
    image, mount = tmp_path / "xfs.img", tmp_path / "xfs"
    mount.mkdir()
    with open(str(image), "wb") as handle:
        handle.truncate(300 * 1024 * 1024)
    subprocess.check_call(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)])
    if subprocess.call(["mount", "-o", "loop", str(image), str(mount)]) != 0:
        pytest.skip("no loop device for the XFS image")
    try:
        yield mount
    finally:
        subprocess.call(["umount", str(mount)])


def available(path):
    """Free bytes once they stop moving: XFS writes out delayed allocations on sync and frees
    unlinked inodes in the background (deferred inactivation)."""
    last = None
    while True:
        os.sync()
        vfs = os.statvfs(str(path))
        now = vfs.f_bavail * vfs.f_frsize
        if now == last:
            return now
        last = now
        time.sleep(0.2)


def test_reflinked_packages_have_one_link_yet_are_in_use_and_their_shared_extents_are_not_reclaimable(xfs, channel):
    home = xfs / "home" / "alice"
    pkgs, installed = install_home(channel, home)
    user = User("root", 0, 0, str(home))
    # A workspace outside the search roots: its packages look unused, but share their extents.
    hidden = xfs / "srv" / "hidden" / ".pixi" / "envs" / "default"
    hidden_dists = rattler_install(channel, ["git"], hidden, pkgs)
    reflinked = [p for p in Path(str(hidden)).rglob("*") if p.is_file() and p.parent.name != "conda-meta"]
    assert reflinked and all(os.lstat(str(p)).st_nlink == 1 for p in reflinked), "rattler reflinks on XFS"
    assert any(shared_extent_bytes(str(p)) for p in reflinked)

    facts = gather_facts([user], {}, Search(), pytest.fail, list_packages=True)
    [cache] = list(facts["caches"].values())
    assert cache["shared_bytes"] > 0
    by_name = {p["name"]: p for p in cache["packages"]}
    git = [n for n in by_name if n.startswith("git-")]
    assert git and all(not by_name[n]["used_by"] and by_name[n]["shared_bytes"] > 0 for n in git)
    assert all(by_name[n]["reclaimable_bytes"] == by_name[n]["disk_bytes"] - by_name[n]["shared_bytes"] for n in git)

    # Only this test writes to the filesystem: statvfs measures the removal exactly.
    before = available(xfs)
    planned = clean([user], {}, Search(), pytest.fail, check_mode=True)
    done = clean([user], {}, Search(), pytest.fail)
    assert not done["errors"], done["errors"]
    assert done["removed"] and sorted(done["removed"]) == sorted(i["path"] for i in planned["caches"][0]["remove"])
    assert available(xfs) - before == done["planned_bytes"] == planned["planned_bytes"] > 0
    assert all(p.is_file() for p in reflinked) and len(hidden_dists) == len(list((hidden / "conda-meta").glob("*.json")))
