# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit-test setup shared by every directory."""

import os

import pytest


@pytest.fixture(autouse=True)
def _reachable_tmp_path(request):
    """Removals run with the credentials of the cache's owner, who must be able to reach it, as
    users reach their homes on a real host.  pytest makes its temporary directories root-only
    (0700); let every account pass through them (and list a test's own tree)."""
    if "tmp_path" not in request.fixturenames or os.geteuid() != 0:
        return
    tmp_path = request.getfixturevalue("tmp_path")
    base = request.config._tmp_path_factory.getbasetemp()  # pylint: disable=protected-access
    for directory in (base.parent, base, *[p for p in tmp_path.parents if base in p.parents]):
        os.chmod(directory, 0o711)
    os.chmod(tmp_path, 0o755)
