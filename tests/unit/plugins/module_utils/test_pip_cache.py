"""pip_cache: pip's cache-dir rules evaluated for another user, and exact per-part accounting.

Location cases are checked against a hand-written expectation and, where pip has the same view
(``pip cache dir`` reads ``[global]``, not ``[install]``), against the real pip of this venv run
as that user would run it.  Sizes are checked against ``du``/``find`` and the fixture manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pkgcache.fleet.plugins.module_utils import pip_cache
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_cache import (
    gather_facts,
    measure_cache,
    pip_config_files,
    resolve_pip_cache,
    resolve_uv_cache,
)
from condafab.pipcache import build_pip_cache, snapshot
from condafab.uvcache import build_real_uv_cache, real_uv_cache, run_uv, user_env, uv_env
from condafab.uvcache import manifest as uv_manifest

NOW = 1_750_000_000


@pytest.fixture
def host(tmp_path):
    """An empty /etc and a home, both under tmp_path."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "home").mkdir()
    return tmp_path


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def resolve(host, env=None):
    warnings = []
    result = resolve_pip_cache(str(host / "home"), env or {}, warnings.append, etc_dir=str(host / "etc"))
    return result, warnings


# --- location ------------------------------------------------------------------------------


def test_default_is_dot_cache_pip_in_the_users_home(host):
    result, warnings = resolve(host)
    assert result["path"] == str(host / "home/.cache/pip")
    assert (result["source"], result["enabled"], warnings) == ("default", True, [])


def test_xdg_cache_home_moves_the_default_but_a_relative_one_is_ignored(host):
    moved = resolve(host, {"XDG_CACHE_HOME": str(host / "xdg")})[0]
    assert (moved["path"], moved["source"]) == (str(host / "xdg/pip"), "XDG_CACHE_HOME")
    assert resolve(host, {"XDG_CACHE_HOME": "relative/dir"})[0]["path"] == str(host / "home/.cache/pip")


def test_env_var_beats_every_config_file(host):
    write(host / "home/.config/pip/pip.conf", "[install]\ncache-dir = /from/user/install\n")
    result = resolve(host, {"PIP_CACHE_DIR": str(host / "env")})[0]
    assert (result["path"], result["source"]) == (str(host / "env"), "PIP_CACHE_DIR")


def test_new_user_file_beats_legacy_user_file_which_beats_global(host):
    write(host / "etc/pip.conf", "[global]\ncache-dir = /g\n")
    write(host / "home/.pip/pip.conf", "[global]\ncache-dir = /legacy\n")
    assert resolve(host)[0]["path"] == "/legacy"
    new = write(host / "home/.config/pip/pip.conf", "[global]\ncache-dir = /new\n")
    result = resolve(host)[0]
    assert (result["path"], result["source"]) == ("/new", "%s [global]" % new)


def test_install_section_of_an_earlier_file_beats_global_of_a_later_one(host):
    """pip orders by section first (global < command < env), files only within a section."""
    etc = write(host / "etc/pip.conf", "[install]\ncache-dir = /etc-install\n")
    write(host / "home/.config/pip/pip.conf", "[global]\ncache-dir = /user-global\n")
    result = resolve(host)[0]
    assert (result["path"], result["source"]) == ("/etc-install", "%s [install]" % etc)


def test_other_command_sections_do_not_count(host):
    write(host / "home/.config/pip/pip.conf", "[download]\ncache-dir = /dl\n[cache]\ncache-dir = /c\n")
    assert resolve(host)[0]["path"] == str(host / "home/.cache/pip")


def test_an_empty_value_in_a_later_file_cancels_an_earlier_one(host):
    write(host / "etc/pip.conf", "[global]\ncache-dir = /g\n")
    write(host / "home/.config/pip/pip.conf", "[global]\ncache-dir =\n")
    assert resolve(host)[0]["path"] == str(host / "home/.cache/pip")


def test_xdg_config_dirs_in_order_then_etc(host):
    write(host / "a/pip/pip.conf", "[global]\ncache-dir = /a\n")
    write(host / "b/pip/pip.conf", "[global]\ncache-dir = /b\n")
    env = {"XDG_CONFIG_DIRS": "%s:%s" % (host / "a", host / "b")}
    assert resolve(host, env)[0]["path"] == "/b"
    write(host / "etc/pip.conf", "[global]\ncache-dir = /etc\n")
    assert resolve(host, env)[0]["path"] == "/etc"


def test_default_xdg_config_dir_is_etc_xdg(host):
    write(host / "etc/xdg/pip/pip.conf", "[global]\ncache-dir = /xdg\n")
    assert resolve(host)[0]["path"] == "/xdg"


def test_xdg_config_home_replaces_dot_config(host):
    write(host / "home/.config/pip/pip.conf", "[global]\ncache-dir = /dotconfig\n")
    write(host / "cfg/pip/pip.conf", "[global]\ncache-dir = /xdgcfg\n")
    assert resolve(host, {"XDG_CONFIG_HOME": str(host / "cfg")})[0]["path"] == "/xdgcfg"


def test_virtualenv_file_beats_user_file_and_pip_config_file_beats_both(host):
    write(host / "home/.config/pip/pip.conf", "[global]\ncache-dir = /user\n")
    write(host / "venv/pip.conf", "[global]\ncache-dir = /venv\n")
    env = {"VIRTUAL_ENV": str(host / "venv")}
    assert resolve(host, env)[0]["path"] == "/venv"
    env["PIP_CONFIG_FILE"] = str(write(host / "explicit.conf", "[global]\ncache-dir = /explicit\n"))
    assert resolve(host, env)[0]["path"] == "/explicit"


def test_existing_pip_config_file_skips_user_files(host):
    user = write(host / "home/.config/pip/pip.conf", "[install]\ncache-dir = /user\n")
    explicit = write(host / "explicit.conf", "[global]\nindex-url = https://index.example.invalid\n")
    result = resolve(host, {"PIP_CONFIG_FILE": str(explicit)})[0]
    assert result["path"] == str(host / "home/.cache/pip")
    assert str(user) not in result["config_files"]
    missing = resolve(host, {"PIP_CONFIG_FILE": str(host / "missing.conf")})[0]
    assert missing["path"] == "/user"


def test_pip_config_file_devnull_disables_every_file(host):
    write(host / "etc/pip.conf", "[global]\ncache-dir = /g\n")
    assert pip_config_files(str(host / "home"), {"PIP_CONFIG_FILE": os.devnull}) == []
    result = resolve(host, {"PIP_CONFIG_FILE": os.devnull})[0]
    assert (result["path"], result["config_files"]) == (str(host / "home/.cache/pip"), [])


@pytest.mark.parametrize("spelling", ["cache-dir", "cache_dir", "--cache-dir", "Cache-Dir"])
def test_key_spellings_pip_accepts(host, spelling):
    write(host / "home/.config/pip/pip.conf", "[global]\n%s = /spelled\n" % spelling)
    assert resolve(host)[0]["path"] == "/spelled"


@pytest.mark.parametrize("value", ["1", "true", "yes", "off", "false", "0"])
def test_any_valid_no_cache_dir_disables_even_false(host, value):
    where = write(host / "etc/pip.conf", "[global]\nno-cache-dir = %s\n" % value)
    write(host / "home/.config/pip/pip.conf", "[global]\ncache-dir = /later\n")
    result, warnings = resolve(host)
    assert (result["enabled"], result["disabled_by"], warnings) == (False, "%s [global]" % where, [])
    assert result["path"] == "/later"


def test_no_cache_dir_from_the_environment(host):
    result = resolve(host, {"PIP_NO_CACHE_DIR": "1"})[0]
    assert (result["enabled"], result["disabled_by"]) == (False, "PIP_NO_CACHE_DIR")


def test_invalid_no_cache_dir_is_a_warning_naming_the_file(host):
    where = write(host / "home/.config/pip/pip.conf", "[global]\nno-cache-dir = perhaps\n")
    result, warnings = resolve(host)
    assert result["enabled"] is True
    assert len(warnings) == 1 and str(where) in warnings[0] and "perhaps" in warnings[0]


def test_tilde_means_this_users_home_and_tilde_name_that_users(host):
    write(host / "home/.config/pip/pip.conf", "[global]\ncache-dir = ~/pipcache\n")
    assert resolve(host)[0]["path"] == str(host / "home/pipcache")
    result = resolve(host, {"PIP_CACHE_DIR": "~root/x"})[0]
    assert result["path"] == os.path.join(os.path.expanduser("~root"), "x")


def test_relative_cache_dir_resolves_against_home_with_a_warning(host):
    result, warnings = resolve(host, {"PIP_CACHE_DIR": "rel/cache"})
    assert result["path"] == str(host / "home/rel/cache")
    assert len(warnings) == 1 and "relative" in warnings[0]


def test_cache_dir_is_made_real_as_pip_does(host):
    (host / "real").mkdir()
    (host / "home/.cache").symlink_to(host / "real")
    assert resolve(host)[0]["path"] == str(host / "real/pip")


@pytest.mark.parametrize(
    "content",
    [
        "[global\ncache-dir = /x\n",
        "cache-dir = /no/section\n",
        "[global]\ncache-dir = /a\ncache-dir = /b\n",
        b"[global]\ncache-dir = /\xff\xfe\n",
    ],
    ids=["unclosed-section", "no-section", "duplicate-option", "not-utf8"],
)
def test_malformed_file_is_a_warning_naming_it_and_other_files_still_count(host, content):
    write(host / "etc/pip.conf", "[global]\ncache-dir = /etc-value\n")
    bad = write(host / "home/.config/pip/pip.conf", content)
    result, warnings = resolve(host)
    assert result["path"] == "/etc-value"
    assert str(bad) not in result["config_files"]
    assert len(warnings) == 1 and str(bad) in warnings[0]


def test_config_path_that_is_a_directory_is_a_warning(host):
    bad = host / "home/.config/pip/pip.conf"
    bad.mkdir(parents=True)
    result, warnings = resolve(host)
    assert result["path"] == str(host / "home/.cache/pip")
    assert len(warnings) == 1 and str(bad) in warnings[0]


def test_uv_cache_location(host):
    home = str(host / "home")
    assert resolve_uv_cache(home, {}, None) == {"path": str(host / "home/.cache/uv"), "source": "default"}
    assert resolve_uv_cache(home, {"XDG_CACHE_HOME": str(host / "x")}, None) == {"path": str(host / "x/uv"), "source": "XDG_CACHE_HOME"}
    assert resolve_uv_cache(home, {"UV_CACHE_DIR": str(host / "u")}, None) == {"path": str(host / "u"), "source": "UV_CACHE_DIR"}


def test_uv_system_config_falls_back_to_etc_uv_and_a_relative_cache_dir_is_warned_about(host):
    write(host / "etc/uv/uv.toml", "cache-dir = 'relative/cache'\n")
    warnings = []
    found = resolve_uv_cache(str(host / "home"), {}, warnings.append, etc_dir=str(host / "etc"))
    assert found == {"path": str(host / "home/relative/cache"), "source": str(host / "etc/uv/uv.toml")}
    assert warnings == ["uv cache-dir from %s 'relative/cache' is relative; it depends on the working directory, "
                        "resolved against %s" % (host / "etc/uv/uv.toml", host / "home")]


def test_a_cache_dir_that_is_not_a_plain_string_is_a_warning(host):
    write(host / "home/.config/uv/uv.toml", "cache-dir = [1]\n")
    warnings = []
    found = resolve_uv_cache(str(host / "home"), {}, warnings.append, etc_dir=str(host / "etc"))
    assert found["source"] == "default" and len(warnings) == 1 and "not a plain string" in warnings[0]


# Paths as strings TOML can hold: no NUL, and printable enough for a file name.
toml_paths = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)


@given(toml_paths, st.booleans(), st.sampled_from(["", "  # note", "\t#"]), st.sampled_from(["", "# head\nx = 1\n"]))
def test_uv_toml_cache_dir_reads_as_a_toml_parser_does(value, literal, comment, before):
    """Every string TOML accepts as a top-level ``cache-dir`` (basic or literal) reads the same as
    with tomllib; a key inside a table is not top-level and is not read."""
    if literal and ("'" in value or "\n" in value):
        literal = False
    quoted = "'%s'" % value if literal else json.dumps(value, ensure_ascii=False)
    text = "%scache-dir = %s%s\n" % (before, quoted, comment)
    directory = Path(tempfile.mkdtemp(prefix="uvtoml-"))
    try:
        path = write(directory / "uv.toml", text)
        assert pip_cache.read_uv_cache_dir(str(path), [].append) == tomllib.loads(text)["cache-dir"]
        write(path, "[pip]\n" + text)
        assert pip_cache.read_uv_cache_dir(str(path), [].append) is None
    finally:
        shutil.rmtree(directory)


# The same rules through the real uv of this venv (`uv cache dir`), as the user would run it.  The
# system file is only reachable through XDG_CONFIG_DIRS here (uv's /etc/uv fallback is this host's).
UV_SCENARIOS = {
    "default": ({}, {}),
    "xdg-cache": ({}, {"XDG_CACHE_HOME": "{root}/xdg"}),
    "relative-xdg-cache-ignored": ({}, {"XDG_CACHE_HOME": "relative"}),
    "env": ({}, {"UV_CACHE_DIR": "{root}/env"}),
    "user-config": ({"home/.config/uv/uv.toml": 'cache-dir = "{root}/user"  # a comment'}, {}),
    "xdg-config-home": ({"cfg/uv/uv.toml": "cache-dir = '{root}/xdg-config'"}, {"XDG_CONFIG_HOME": "{root}/cfg"}),
    "system-first-found": ({"sys2/uv/uv.toml": 'cache-dir = "{root}/system"'},
                           {"XDG_CONFIG_DIRS": "{root}/sys1:{root}/sys2"}),
    "system-skips-empty-entries": ({"sys2/uv/uv.toml": 'cache-dir = "{root}/system"'},
                                   {"XDG_CONFIG_DIRS": "{root}/sys1::{root}/sys2"}),
    "user-beats-system": ({"home/.config/uv/uv.toml": '"cache-dir" = "{root}/user"',
                           "sys/uv/uv.toml": 'cache-dir = "{root}/system"'}, {"XDG_CONFIG_DIRS": "{root}/sys"}),
    "user-without-key-then-system": ({"home/.config/uv/uv.toml": "native-tls = true",
                                      "sys/uv/uv.toml": 'cache-dir = "{root}/system"'}, {"XDG_CONFIG_DIRS": "{root}/sys"}),
    "env-beats-config": ({"home/.config/uv/uv.toml": 'cache-dir = "{root}/user"'}, {"UV_CACHE_DIR": "{root}/env"}),
    "no-config": ({"home/.config/uv/uv.toml": 'cache-dir = "{root}/user"'}, {"UV_NO_CONFIG": "1"}),
    "config-file-alone": ({"home/.config/uv/uv.toml": 'cache-dir = "{root}/user"', "custom.toml": "offline = true"},
                          {"UV_CONFIG_FILE": "{root}/custom.toml"}),
    "key-under-a-table-does-not-count": ({"home/.config/uv/uv.toml": '[pip]\nindex-url = "https://x.invalid"'}, {}),
    "escapes": ({"home/.config/uv/uv.toml": 'cache-dir = "{root}/a\\u0062c"'}, {}),
}


@pytest.mark.parametrize("name", sorted(UV_SCENARIOS))
def test_agrees_with_real_uv_cache_dir(host, name):
    files, env = UV_SCENARIOS[name]
    env = {key: value.format(root=host) for key, value in env.items()}
    env.setdefault("XDG_CONFIG_DIRS", str(host / "etc/xdg"))
    for rel, body in files.items():
        write(host / rel, body.format(root=host) + "\n")
    warnings = []
    ours = resolve_uv_cache(str(host / "home"), env, warnings.append, etc_dir=str(host / "etc"))
    assert warnings == []
    (host / "cwd").mkdir()
    theirs = run_uv("cache", "dir", env=user_env(host / "home", **env), cwd=host / "cwd")
    assert theirs.strip() == ours["path"]


# The same scenarios through the real pip of this venv, as the user would run it.  `pip cache dir`
# reads [global] (and [cache]), so only [global] cases are comparable.
PIP_SCENARIOS = {
    "default": ({}, {}),
    "xdg-cache": ({}, {"XDG_CACHE_HOME": "{root}/xdg"}),
    "legacy-vs-new": ({".pip/pip.conf": "cache-dir = /legacy", ".config/pip/pip.conf": "cache-dir = /new"}, {}),
    "legacy-only": ({".pip/pip.conf": "cache-dir = ~/legacy"}, {}),
    "env-beats-file": ({".config/pip/pip.conf": "cache-dir = /file"}, {"PIP_CACHE_DIR": "{root}/env"}),
    "xdg-config-home": ({"cfg/pip/pip.conf": "cache_dir = /xdgcfg"}, {"XDG_CONFIG_HOME": "{root}/home/cfg"}),
    "explicit-skips-user": ({".config/pip/pip.conf": "cache-dir = /user", "x.conf": "timeout = 5"}, {"PIP_CONFIG_FILE": "{root}/home/x.conf"}),
    "explicit-missing": ({".config/pip/pip.conf": "cache-dir = /user"}, {"PIP_CONFIG_FILE": "{root}/missing.conf"}),
    "empty-cancels": ({".pip/pip.conf": "cache-dir = /legacy", ".config/pip/pip.conf": "cache-dir ="}, {}),
    "no-cache-false": ({".config/pip/pip.conf": "no-cache-dir = false"}, {}),
}


@pytest.mark.parametrize("name", sorted(PIP_SCENARIOS))
def test_agrees_with_real_pip_cache_dir(host, name):
    files, env = PIP_SCENARIOS[name]
    env = {key: value.format(root=host) for key, value in env.items()}
    for rel, body in files.items():
        write(host / "home" / rel, "[global]\n%s\n" % body)
    ours = resolve_pip_cache(str(host / "home"), env, [].append)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "XDG_", "VIRTUAL_ENV"))}
    clean.update(env, HOME=str(host / "home"))
    run = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], env=clean, cwd=host,
                         capture_output=True, text=True, check=False)
    if ours["enabled"]:
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == ours["path"]
    else:
        assert run.returncode != 0 and "cache is disabled" in run.stderr


# --- measuring -----------------------------------------------------------------------------


def du(path) -> int:
    out = subprocess.run(["du", "-sx", "--block-size=1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def apparent(path) -> int:
    out = subprocess.run(["find", str(path), "(", "-type", "f", "-o", "-type", "l", ")", "-printf", "%s\\n"],
                         capture_output=True, text=True, check=True)
    return sum(int(line) for line in out.stdout.split())


def test_pip_cache_numbers_match_du_find_and_the_fixture(tmp_path):
    cache = tmp_path / "pip"
    manifest = build_pip_cache(cache, seed=7, http_entries=9, legacy_http_entries=3, wheels=4, selfchecks=2, now=NOW)
    warnings = []
    total, parts = measure_cache(str(cache), pip_cache.PIP_SECTIONS, warnings.append)
    assert warnings == []
    assert total.usage.on_disk == du(cache) == total.usage.reclaimable
    assert total.usage.apparent == apparent(cache) == manifest["apparent_bytes"]
    assert total.items == manifest["items"] == 9 + 3 + 4 + 2
    assert total.usage.files == manifest["files"] == 9 * 2 + 3 + 4 * 2 + 2
    for name in pip_cache.PIP_SECTIONS:
        expected, got = manifest["sections"][name], parts[name].as_dict(NOW)
        assert got["disk_bytes"] == du(cache / name)
        assert got["apparent_bytes"] == apparent(cache / name) == expected["apparent_bytes"]
        assert (got["items"], got["files"]) == (expected["items"], expected["files"])
        assert (got["oldest_mtime"], got["newest_mtime"]) == (expected["oldest_mtime"], expected["newest_mtime"])
        assert got["oldest_age_seconds"] == NOW - expected["oldest_mtime"]
    assert parts["other"].usage.entries == 0


def test_missing_sections_are_zero_and_strays_go_to_other(tmp_path):
    cache = tmp_path / "pip"
    write(cache / "selfcheck.json", b"{}")
    write(cache / "stray/file.bin", b"x" * 5000)
    total, parts = measure_cache(str(cache), pip_cache.PIP_SECTIONS, [].append)
    assert parts["wheels"].as_dict(NOW)["disk_bytes"] == 0 and parts["wheels"].oldest is None
    assert parts["other"].usage.apparent == 5002 and parts["other"].items == 2
    assert total.usage.on_disk == du(cache)


def test_real_uv_cache_buckets_size_and_hard_links_into_venvs(tmp_path):
    cache, work = tmp_path / "uv", tmp_path / "work"
    build_real_uv_cache(cache, work)
    total, parts = measure_cache(str(cache), None, [].append)
    expected = uv_manifest(cache)
    assert set(parts) == set(expected["sections"]) - {"root"} | {"other"}
    assert total.usage.apparent == expected["apparent_bytes"]
    for bucket, counts in expected["sections"].items():
        part = parts["other" if bucket == "root" else bucket]
        assert (part.items, part.usage.apparent) == (counts["items"], counts["apparent_bytes"]), bucket
    # `uv cache size` counts blocks on disk, each inode once, directories included: as we do.
    size = run_uv("cache", "size", "--preview-features", "cache-size", "--output-format", "machine",
                  "--cache-dir", str(cache), env=uv_env(tmp_path))
    assert total.usage.on_disk == int(size) == du(cache)
    # uv hard-links installed files into the venvs: du of the cache after the venvs is what is only
    # the cache's, what removing it would free.
    listed = subprocess.run(["du", "-sB1", str(work), str(cache)], capture_output=True, text=True, check=True)
    only_cache = int(listed.stdout.splitlines()[1].split()[0])
    assert total.usage.reclaimable == only_cache < total.usage.on_disk


def test_symlink_out_of_the_cache_is_not_followed_and_loops_are_harmless(tmp_path):
    cache = tmp_path / "pip"
    build_pip_cache(cache, seed=1, now=NOW)
    before, before_parts = measure_cache(str(cache), pip_cache.PIP_SECTIONS, [].append)
    big = write(tmp_path / "outside/big.bin", b"b" * 1_000_000)
    (cache / "wheels/escape").symlink_to(big.parent)
    (cache / "http-v2/file-escape").symlink_to(big)
    (cache / "loop-a").symlink_to(cache / "loop-b")
    (cache / "loop-b").symlink_to(cache / "loop-a")
    (cache / "http/self").symlink_to(cache)
    warnings = []
    after, parts = measure_cache(str(cache), pip_cache.PIP_SECTIONS, warnings.append)
    links = [cache / "wheels/escape", cache / "http-v2/file-escape", cache / "loop-a", cache / "loop-b", cache / "http/self"]
    assert warnings == []
    assert after.usage.apparent - before.usage.apparent == sum(os.lstat(p).st_size for p in links)
    assert after.usage.on_disk == du(cache) < 1_000_000
    assert after.usage.files == before.usage.files
    assert {n: p.items for n, p in parts.items()} == {n: p.items for n, p in before_parts.items()}


def test_cache_path_that_is_a_file_is_a_warning(tmp_path):
    path = write(tmp_path / "pip", b"not a dir")
    warnings = []
    assert measure_cache(str(path), pip_cache.PIP_SECTIONS, warnings.append) is None
    assert len(warnings) == 1 and str(path) in warnings[0]


def test_absent_cache_is_none_without_warning(tmp_path):
    warnings = []
    assert measure_cache(str(tmp_path / "nope"), pip_cache.PIP_SECTIONS, warnings.append) is None
    assert warnings == []


# --- the facts -----------------------------------------------------------------------------


def users_in(root: Path, *names) -> list:
    return [User(name, 1000 + i, 1000 + i, str(root / "home" / name)) for i, name in enumerate(names)]


def test_facts_per_user_and_a_shared_cache_counted_once(host):
    alice, bob, carol, dave = users_in(host, "alice", "bob", "carol", "dave")
    pip_a = build_pip_cache(Path(alice.home) / ".cache/pip", seed=1, now=NOW)
    real_uv_cache(Path(alice.home) / ".cache/uv")
    shared = build_pip_cache(host / "shared", seed=2, now=NOW)
    for user in (bob, carol):
        write(Path(user.home) / ".config/pip/pip.conf", "[global]\ncache-dir = %s\n" % (host / "shared"))
    Path(dave.home).mkdir(parents=True)
    warnings = []
    facts = gather_facts([alice, bob, carol, dave], {}, warnings.append, now=NOW, etc_dir=str(host / "etc"))
    assert warnings == []
    assert sorted(facts["users"]) == ["alice", "bob", "carol"]
    assert facts["users"]["bob"]["pip"]["path"] == str(host / "shared")
    assert facts["users"]["bob"]["uv"]["exists"] is False
    caches = facts["caches"]
    assert sorted(caches) == sorted([alice.home + "/.cache/pip", alice.home + "/.cache/uv", str(host / "shared")])
    assert caches[str(host / "shared")]["users"] == ["bob", "carol"]
    assert caches[alice.home + "/.cache/pip"]["usage"]["apparent_bytes"] == pip_a["apparent_bytes"]
    pip_total = facts["totals"]["pip"]
    assert pip_total["apparent_bytes"] == pip_a["apparent_bytes"] + shared["apparent_bytes"]
    assert pip_total["disk_bytes"] == du(Path(alice.home) / ".cache/pip") + du(host / "shared")
    assert facts["totals"]["all"]["disk_bytes"] == pip_total["disk_bytes"] + du(Path(alice.home) / ".cache/uv")
    assert facts["summary"].startswith("pip: 2 cache(s)") and "uv: 1 cache(s)" in facts["summary"]


def test_explicit_users_are_reported_even_without_caches_and_missing_homes_warned(host):
    (alice,) = users_in(host, "alice")
    warnings = []
    facts = gather_facts([alice], {}, warnings.append, now=NOW, keep_empty=True, etc_dir=str(host / "etc"))
    assert facts["users"]["alice"]["pip"]["exists"] is False
    assert facts["caches"] == {}
    assert len(warnings) == 1 and alice.home in warnings[0]


def test_missing_home_warned_for_login_accounts_not_for_system_accounts(host):
    person = User("erin", 1005, 1005, str(host / "home/erin"), "/bin/bash")
    daemon = User("daemon", 1, 1, str(host / "nonexistent"), "/usr/sbin/nologin")
    warnings = []
    facts = gather_facts([person, daemon], {}, warnings.append, now=NOW, etc_dir=str(host / "etc"))
    assert facts["users"] == {}
    assert warnings == ["home directory %s of user erin does not exist" % person.home]


def test_environment_option_applies_to_every_user(host):
    users = users_in(host, "alice", "bob")
    build_pip_cache(host / "xdg/pip", seed=5, now=NOW)
    facts = gather_facts(users, {"XDG_CACHE_HOME": str(host / "xdg")}, [].append, now=NOW, etc_dir=str(host / "etc"))
    assert facts["caches"][str(host / "xdg/pip")]["users"] == ["alice", "bob"]


def test_gathering_leaves_the_tree_byte_and_metadata_identical(host):
    (alice,) = users_in(host, "alice")
    build_pip_cache(Path(alice.home) / ".cache/pip", seed=11, now=NOW)
    build_real_uv_cache(Path(alice.home) / ".cache/uv", host / "work")
    write(Path(alice.home) / ".config/pip/pip.conf", "[global]\ntimeout = 3\n")
    (Path(alice.home) / ".cache/pip/loop").symlink_to(Path(alice.home) / ".cache/pip/loop")
    before = snapshot(host)
    facts = gather_facts([alice], {}, [].append, now=NOW, etc_dir=str(host / "etc"))
    assert len(facts["caches"]) == 2
    assert snapshot(host) == before


UNREADABLE_SCRIPT = """
import json, sys
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_cache import PIP_SECTIONS, measure_cache
warnings = []
total, parts = measure_cache(sys.argv[1], PIP_SECTIONS, warnings.append)
print(json.dumps({"warnings": warnings, "files": total.usage.files,
                  "wheels": parts["wheels"].items, "http": parts["http"].items}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a walk as another user")
def test_unreadable_directory_is_a_warning_naming_it_and_the_rest_is_counted():
    """Root reads everything, so the walk runs as `nobody` over a world-readable copy."""
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 that another user can run")
    top = Path(tempfile.mkdtemp(prefix="pipcache-"))
    locked = None
    try:
        os.chmod(top, 0o755)
        utils = top / "lib/ansible_collections/pkgcache/fleet/plugins/module_utils"
        utils.mkdir(parents=True)
        source = Path(pip_cache.__file__).parent
        for module in source.glob("*.py"):
            shutil.copy(module, utils / module.name)
        manifest = build_pip_cache(top / "pip", seed=4, http_entries=5, legacy_http_entries=3, wheels=2, now=NOW)
        locked = next(p for p in sorted((top / "pip/http").rglob("*")) if p.is_dir())
        hidden = sum(1 for p in locked.rglob("*") if p.is_file())
        for path in [top, *top.rglob("*")]:
            if not path.is_symlink():
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(locked, 0)
        run = subprocess.run([python, "-c", UNREADABLE_SCRIPT, str(top / "pip")], user="nobody",
                             env={"PYTHONPATH": str(top / "lib")}, capture_output=True, text=True, check=True)
        result = json.loads(run.stdout)
        assert len(result["warnings"]) == 1 and str(locked) in result["warnings"][0]
        assert result["files"] == manifest["files"] - hidden
        assert result["wheels"] == 2 and result["http"] == 3 - hidden
    finally:
        if locked is not None:
            os.chmod(locked, 0o755)
        shutil.rmtree(top)
