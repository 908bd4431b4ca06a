"""The message for a managed host whose Python is too old for the modules."""

from __future__ import annotations

import pytest

from ansible_collections.pkgcache.fleet.plugins.plugin_utils._managed_python import (
    module_never_ran, parse_version, too_old)


@pytest.mark.parametrize("text, version", [("3.7.16", (3, 7, 16)), ("3.8.0\n", (3, 8, 0)), ("", None),
                                           ("Python 3.7", None)])
def test_versions_are_read_as_the_probe_prints_them(text, version):
    assert parse_version(text) == version


def test_only_an_older_python_than_3_8_is_named():
    assert too_old("h1", "3.7.16", "/usr/bin/python3") == (
        "pkgcache.fleet needs Python 3.8+ on managed hosts, h1 has 3.7.16 (/usr/bin/python3); "
        "set ansible_python_interpreter to a newer one")
    assert too_old("h1", "2.7.18", "/usr/bin/python") is not None
    assert too_old("h1", "3.8.0", "/usr/bin/python3") is None
    assert too_old("h1", "3.12.1", "/usr/bin/python3") is None
    assert too_old("h1", "garbage", "/usr/bin/python3") is None


def test_only_a_module_that_returned_nothing_is_looked_into():
    assert module_never_ran({"failed": True, "module_stderr": "SyntaxError", "msg": "deserialization failed"})
    assert not module_never_ran({"failed": True, "msg": "unknown user(s): x"})
    assert not module_never_ran({"changed": False})
