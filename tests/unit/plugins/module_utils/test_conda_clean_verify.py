# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda_clean's after-clean verification and its rollback policy on real fixture hosts: a clean
that leaves every environment whole says so; one that breaks an environment (a soft-linked
environment whose record no longer names its package) fails with the environment and its
problems; ``keep_revisions`` keeps what ``conda install --rev`` needs, with that reason."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import broken_environments
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_clean import Policy, clean
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host

from .hostroot import host_users, in_root
from .test_conda_clean import USERS, build

CACHE = "/opt/conda/pkgs"
LINKED = "/opt/conda/envs/linked"


def run_clean(targets, check_mode=False, verify=True, **policy):
    host = Host.load(host_users(USERS))
    return clean(host, set(targets), Policy(**policy), check_mode=check_mode, verify=verify)


def test_a_clean_that_leaves_environments_whole_verifies_those_it_touched(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    preview = in_root(fsroot, run_clean, ["packages", "tarballs"], True)
    linked_from_cache = sorted(p for p, e in manifest.envs.items() if e.known and e.packages)
    expected = {"environments": linked_from_cache, "checked": False, "unhealthy_before": [], "broken": []}
    assert preview["verified_environments"] == expected
    result = in_root(fsroot, run_clean, ["packages", "tarballs"])
    assert result["removed"] and result["verified_environments"] == dict(preview["verified_environments"], checked=True)
    assert broken_environments(result) is None
    assert in_root(fsroot, run_clean, ["packages"], verify=False)["verified_environments"] is None


def test_a_clean_that_breaks_an_environment_names_it_and_its_problems(tmp_path):
    fsroot, manifest = build(tmp_path, "softlinked_env")
    only_linked = sorted(set(manifest.envs[LINKED].packages) - set(manifest.envs["/opt/conda/envs/hard"].packages))
    dist = next(d for d in only_linked if json.loads(
        (manifest.real(LINKED) / "conda-meta" / (d + ".json")).read_text())["files"])
    # The record is renamed and no longer says where it was linked from (nor which tarball it came
    # from, which pins the package too), and the history agrees: the environment is whole, but
    # nothing tells a clean that it uses the package.
    meta = manifest.real(LINKED) / "conda-meta"
    record = json.loads((meta / (dist + ".json")).read_text())
    record.pop("extracted_package_dir", None)
    record["link"].pop("source", None)
    record.pop("package_tarball_full_path", None)
    (meta / (dist + ".json")).unlink()
    (meta / "renamed-1.0-0.json").write_text(json.dumps(record))
    history = meta / "history"
    history.write_text(history.read_text().replace("::" + dist + "\n", "::renamed-1.0-0\n"))
    result = in_root(fsroot, run_clean, ["packages"])
    assert "%s/%s" % (CACHE, dist) in result["removed"]
    verified = result["verified_environments"]
    assert verified["checked"] and LINKED in verified["environments"] and verified["unhealthy_before"] == []
    [broken] = verified["broken"]
    files = len(record["files"])
    assert broken["path"] == LINKED and broken["problems"] == {"dangling": files}
    assert sorted(d["path"] for d in broken["dangling"]) == sorted(record["files"])
    assert broken_environments(result) == "environment(s) no longer whole after the clean: %s (%d dangling)" % (
        LINKED, files)


def test_keep_revisions_keeps_what_a_rollback_needs(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    orphan = sorted(manifest.caches[CACHE].orphans)[0]
    prefix = "/opt/conda/envs/web"
    with open(str(manifest.real(prefix) / "conda-meta/history"), "a") as handle:
        handle.write("==> 2024-05-01 10:00:00 <==\n+conda-forge/linux-64::%s\n"
                     "==> 2024-06-01 10:00:00 <==\n-conda-forge/linux-64::%s\n" % (orphan, orphan))
    path = "%s/%s" % (CACHE, orphan)
    kept = in_root(fsroot, run_clean, ["packages"], True, keep_revisions=1)
    [cache] = [c for c in kept["caches"] if c["path"] == CACHE]
    assert path not in [item["path"] for item in cache["remove"]]
    assert {"category": "unused", "reason": "needed to roll %s back 1 revision(s) (keep_revisions=1)" % prefix,
            "count": 1, "paths": [path]} in cache["keep"]
    # One revision further back the package was not installed yet: nothing else is kept for it.
    assert path in in_root(fsroot, run_clean, ["packages"], True)["paths"]
