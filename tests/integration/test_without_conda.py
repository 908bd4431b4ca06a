# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hosts without conda in a mixed fleet (issue 14, finding 7): backup and relocation report them
as skipped, with the reason, instead of failing them; without the option they still fail."""

from __future__ import annotations

import json

import pytest

from testfleet.fleet import running


@pytest.fixture(scope="module")
def bare(fleet_state_factory):
    with running(fleet_state_factory("bare"), 1, ("bare",)) as fleet:
        yield fleet, fleet.hosts[0]


@pytest.mark.parametrize("module, args", [
    ("pkgcache.fleet.conda_pkgs_backup", {"dest": "/mnt/backup-that-is-not-there"}),
    ("pkgcache.fleet.conda_pkgs_dirs", {"root": "/opt/conda", "pkgs_dirs": ["/data/pkgs"], "migrate": True}),
])
def test_a_host_without_conda_is_skipped_with_the_reason_not_failed(bare, module, args):
    fleet, host = bare

    def run(extra):
        done = fleet.ansible(host, "-m", module, "-a", json.dumps(dict(args, **extra)), "--become", "-o")
        return done.returncode, done.stdout

    code, out = run({})
    assert code != 0 and "%s | FAILED" % host in out, out
    code, out = run({"skip_without_conda": True})
    assert code == 0 and "%s | SKIPPED" % host in out and "FAILED" not in out, out
