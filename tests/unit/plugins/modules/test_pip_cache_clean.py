"""pip_cache_clean run as Ansible runs it: the module file in a process of its own with an args
file.  Only ``root`` is asked for, with ``PIP_CACHE_DIR``/``UV_CACHE_DIR`` pointing at fixture
caches in a temp dir, so the runs are real but touch nothing of the machine's users."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from condafab.pipcache import build_pip_cache, snapshot
from condafab.uvcache import real_uv_cache

REPO = Path(__file__).resolve().parents[4]
LINK = REPO / ".build" / "link"
MODULE = LINK / "ansible_collections/pkgcache/fleet/plugins/modules/pip_cache_clean.py"
# One diff line per item: path, size on disk in binary units, reason.
DIFF_LINE = re.compile(r"^(?P<path>/.+)  \((?P<number>\d+(?:\.\d)?) (?P<unit>B|KiB|MiB|GiB|TiB), (?P<reason>.+)\)$")
UNIT = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4}


def diff_items(text):
    """``{path: (bytes as written, unit, reason)}`` from a clean's diff; every line must parse."""
    items = {}
    for line in text.splitlines():
        match = DIFF_LINE.match(line)
        assert match, "diff line without path, size and reason: %r" % line
        items[match["path"]] = (float(match["number"]) * UNIT[match["unit"]], UNIT[match["unit"]], match["reason"])
    return items


def run_module(tmp_path: Path, args: dict, check_mode=False, diff=False) -> dict:
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(LINK), ANSIBLE_COLLECTIONS_PATH=str(LINK))
    done = subprocess.run([sys.executable, str(MODULE), str(args_file)], env=env, capture_output=True, text=True,
                          check=False)
    return json.loads(done.stdout)


@pytest.fixture
def caches(tmp_path):
    """root's pip cache and a real uv cache. Returns the module's ``environment``."""
    build_pip_cache(tmp_path / "pip", seed=31, wheels=4)
    real_uv_cache(tmp_path / "uv")
    return {"PIP_CACHE_DIR": str(tmp_path / "pip"), "UV_CACHE_DIR": str(tmp_path / "uv"),
            "PIP_CONFIG_FILE": os.devnull}


def test_check_and_diff_preview_the_real_run_which_a_rerun_does_not_repeat(tmp_path, caches):
    args = {"users": ["root"], "environment": caches, "purge": True, "uv": "prune"}
    before = snapshot(tmp_path / "pip"), snapshot(tmp_path / "uv")
    preview = run_module(tmp_path, args, check_mode=True, diff=True)
    assert preview.get("failed") is not True, preview
    assert (snapshot(tmp_path / "pip"), snapshot(tmp_path / "uv")) == before
    assert preview["changed"] is True and preview["removed"] == [] and preview["msg"].startswith("would remove")
    listed = diff_items(preview["diff"]["before"])
    assert str(tmp_path / "pip/http-v2") in listed and str(tmp_path / "uv/archive-v0") not in listed
    assert len([path for path in listed if path.startswith(str(tmp_path / "uv/environments-v2/"))]) == 1
    assert [c["tool"] for c in preview["caches"]] == ["pip", "uv"]
    planned = [i for c in preview["caches"] for i in c["remove"]]
    assert sorted(listed) == sorted(i["path"] for i in planned)
    for item in planned:
        written, unit, reason = listed[item["path"]]
        # Shown to one decimal of its unit (bytes exactly), next to the reason the result gives.
        assert abs(written - item["disk_bytes"]) <= (0 if unit == 1 else unit * 0.05), (item, written)
        assert reason == item["reason"]
    assert any(i["disk_bytes"] >= 1024 for i in planned)
    assert preview["diff"]["after"] == ""

    done = run_module(tmp_path, args)
    assert done["removed"] == list(listed) == [i["path"] for c in done["caches"] for i in c["remove"]]
    assert done["planned_bytes"] == preview["planned_bytes"] > 0
    assert sorted(os.listdir(tmp_path / "pip")) == ["selfcheck"]
    assert sorted(os.listdir(tmp_path / "uv")) == sorted(
        [".gitignore", ".lock", "CACHEDIR.TAG", "archive-v0", "builds-v0", "environments-v2", "interpreter-v5",
         "sdists-v11", "wheels-v8"])
    assert [c["cleaned_by"] for c in done["caches"]] == ["pkgcache.fleet", "pkgcache.fleet"]

    again = run_module(tmp_path, args, check_mode=True, diff=True)
    assert (again["changed"], again["removed"], again["diff"]["before"]) == (False, [], "")
    again = run_module(tmp_path, args)
    assert (again["changed"], again["removed"]) == (False, [])


@pytest.mark.parametrize("bad, message", [
    ({"users": ["root", "nobody-by-that-name"], "purge": True}, "unknown user(s): nobody-by-that-name"),
    ({"purge": True, "patterns": ["numpy"]}, "purge and patterns cannot be combined"),
    ({"min_age": "a week"}, "min_age: 'a week' is not a duration"),
    ({"uv": "purge"}, "value of uv must be one of: prune, clean, got: purge"),
    ({"include_selfcheck": True, "min_age": "1d"}, "include_selfcheck only applies to purge"),
])
def test_bad_input_fails_with_a_clear_message_and_deletes_nothing(tmp_path, caches, bad, message):
    before = snapshot(tmp_path / "pip"), snapshot(tmp_path / "uv")
    result = run_module(tmp_path, dict({"users": ["root"], "environment": caches}, **bad))
    assert result.get("failed") is True and message in result["msg"], result
    assert (snapshot(tmp_path / "pip"), snapshot(tmp_path / "uv")) == before


def test_compact_results_carry_counts_and_the_same_removal(tmp_path, caches):
    """``compact``: each cache's items become a count and their bytes, keep groups lose their
    paths; what is removed, the sizes and the diff stay whole.  Its JSON is a fraction of the full one
    (a target that is never met lists every entry)."""
    args = {"users": ["root"], "environment": caches, "purge": True, "uv": "prune", "target_free": "100%"}
    full = run_module(tmp_path, args, check_mode=True, diff=True)
    small = run_module(tmp_path, dict(args, compact=True), check_mode=True, diff=True)
    assert small["diff"] == full["diff"] and small["planned_bytes"] == full["planned_bytes"]
    for big, little in zip(full["caches"], small["caches"]):
        assert "remove" not in little and little["remove_count"] == len(big["remove"]) > 0
        assert little["remove_bytes"] == sum(i["disk_bytes"] for i in big["remove"])
        assert [dict(g, paths=None) for g in little["keep"]] == [dict(g, paths=None) for g in big["keep"]]
        assert all("paths" not in g for g in little["keep"])
    full.pop("diff"), small.pop("diff")
    assert len(json.dumps(small)) * 2 < len(json.dumps(full))
    done = run_module(tmp_path, dict(args, compact=True))
    assert done["removed"] == [i["path"] for c in full["caches"] for i in c["remove"]]
    assert not any(os.path.lexists(path) for path in done["removed"])
