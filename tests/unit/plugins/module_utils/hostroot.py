# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests call the modules' logic on a fixture host (``condafab.chroot``); they skip where
that cannot run (not root)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from condafab.chroot import in_host

# Imported here, not in host_users: code called inside the chroot cannot import anything.
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User


def require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (chroot into the fixture's filesystem root)")


def in_root(fsroot, func, *args, **kwargs):
    """``func(*args, **kwargs)`` evaluated inside ``chroot(fsroot)``; returns its JSON result."""
    require_root()
    return in_host(fsroot, lambda: func(*args, **kwargs))


def host_users(users):
    """condafab Users as the model's Users (same fields, the module's own class)."""
    return [User(u.name, u.uid, u.gid, u.home) for u in users]
