"""Fixtures shared by the condafab tests: one small scalable build per session (read-only)."""

import os

import pytest

from condafab import User
from condafab.scale import build

ALICE = User("alice", os.getuid() if os.geteuid() else 1001, os.getgid() if os.geteuid() else 1001, "/home/alice")


def pytest_configure(config):
    config.addinivalue_line("markers", "big: the 2,000-package build; runs only with CONDAFAB_BIG=1")


@pytest.fixture(scope="session")
def small(tmp_path_factory):
    """40 packages x 8 files, 4 envs (soft, copy, hard, hard), one user: every case, in ~1 s.

    Tests must not modify it.
    """
    root = tmp_path_factory.mktemp("small")
    return build(root, seed=1234, packages=40, files=8, envs=4, users=[ALICE], share=0.4)
