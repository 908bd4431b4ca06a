# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda_model loads on real fixture hosts: what the tarball-only load (backup's) keeps of a full one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from condafab.layouts import DEFAULT_USERS, LAYOUTS, ROOT_USER

from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host

from .hostroot import host_users, in_root

USERS = [ROOT_USER] + list(DEFAULT_USERS)


def _load(users, tarballs_only, env):
    host = Host.load(users, env=env, tarballs_only=tarballs_only)
    try:
        host.verdicts()
        verdicts = "computed"
    except ValueError as exc:
        verdicts = str(exc)
    return {
        "caches": [[c.path, c.exists, c.conda_writable,
                    [[t.relpath, t.usage.apparent, t.usage.on_disk, t.mtime] for t in c.tarballs],
                    len(c.extracted)] for c in host.caches],
        "cache_users": host.cache_users,
        "environments": [[e.prefix, e.owner, e.records is None] for e in host.environments],
        "warnings": sorted(host.warnings),
        "verdicts": verdicts,
    }


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_tarballs_only_load_finds_the_same_caches_tarballs_and_environments(tmp_path, layout):
    fsroot = tmp_path / "host"
    manifest = LAYOUTS[layout](fsroot, 7, list(DEFAULT_USERS))
    users = host_users(USERS)
    full = in_root(fsroot, _load, users, False, manifest.environment)
    light = in_root(fsroot, _load, users, True, manifest.environment)
    assert full["caches"], "the fixture has caches"
    assert [c[:4] for c in light["caches"]] == [c[:4] for c in full["caches"]]
    assert sum(len(c[3]) for c in full["caches"]) == sum(len(t) for t in manifest_tarballs(manifest))
    assert light["cache_users"] == full["cache_users"]
    # Environments are found the same, their records are not read (None, never an empty list).
    assert [e[:2] for e in light["environments"]] == [e[:2] for e in full["environments"]]
    assert all(e[2] for e in light["environments"]) and not any(e[2] for e in full["environments"])
    # Nothing extracted is walked, so nothing can be judged unused from such a load.
    assert all(c[4] == 0 for c in light["caches"])
    assert full["verdicts"] == "computed" and "full load" in light["verdicts"]
    # A tarball-only load reads fewer files, so it can only have fewer warnings.
    assert set(light["warnings"]) <= set(full["warnings"])


def manifest_tarballs(manifest):
    return [intended.tarballs for intended in manifest.caches.values()]
