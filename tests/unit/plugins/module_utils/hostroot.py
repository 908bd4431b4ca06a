# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run module_utils code as if on the host a fixture describes: fork, chroot into the fixture's
filesystem root, call, and send the JSON-able result back through a pipe.

condafab layouts write in-host absolute paths (``/opt/conda``) into records and configs; chroot
makes those paths real for the code under test without translating anything.  Needs root.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import traceback

import pytest


def require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (chroot into the fixture's filesystem root)")


def in_root(fsroot, func, *args, **kwargs):
    """``func(*args, **kwargs)`` evaluated inside ``chroot(fsroot)``; returns its JSON result."""
    require_root()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        status = 0
        try:
            os.chroot(str(fsroot))
            os.chdir("/")
            payload = {"ok": func(*args, **kwargs)}
        except BaseException:  # pylint: disable=broad-except
            payload = {"error": traceback.format_exc()}
            status = 1
        with os.fdopen(write_fd, "w") as out:
            out.write(json.dumps(payload, default=str))
        os._exit(status)  # pylint: disable=protected-access
    os.close(write_fd)
    with os.fdopen(read_fd) as stream:
        data = stream.read()
    os.waitpid(pid, 0)
    payload = json.loads(data)
    if "error" in payload:
        raise AssertionError("in chroot %s:\n%s" % (fsroot, payload["error"]))
    return payload["ok"]


def host_users(users):
    """condafab Users as the model's Users (same fields, the module's own class)."""
    from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import User
    return [User(u.name, u.uid, u.gid, u.home) for u in users]
