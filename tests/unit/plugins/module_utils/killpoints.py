# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill points for SIGKILL tests: in a forked child, count the real filesystem changes a run
makes and kill the process just before a chosen one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal


def kill_before(step, names):
    """Count every call of the ``os`` functions ``names`` in this process and SIGKILL it just
    before the ``step``-th (``step`` None: only count).  Returns the one-item counter list.
    Only for a forked child: the calls stay real, the process dies for real."""
    calls = [0]

    def counting(name):
        real = getattr(os, name)

        def call(*args, **kwargs):
            calls[0] += 1
            if step is not None and calls[0] == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return call

    for name in names:
        setattr(os, name, counting(name))
    return calls


def forked(child):
    """Run ``child(report_fd)`` in a forked process (it must end with ``os._exit``); returns its
    wait status and what it wrote to ``report_fd`` as an int (None: nothing)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        child(write_fd)
    os.close(write_fd)
    _pid, status = os.waitpid(pid, 0)
    with os.fdopen(read_fd) as stream:
        reported = stream.read()
    return status, int(reported) if reported else None
