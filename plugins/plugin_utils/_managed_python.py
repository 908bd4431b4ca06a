# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The managed host's Python, when a module could not even start there.

ansible-core's own module wrapper needs Python 3.8+: under 3.7 it stops with a SyntaxError before
any module code runs, and the controller reports only "Module result deserialization failed".
Nothing on the managed host can say better, so the action in front of every module asks the
interpreter for its version after such a failure (one command, run only then) and names it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

MINIMUM = (3, 8)
# Prints the interpreter's version as 3.7.16; valid Python 2 and 3, so any interpreter answers.
PROBE = "import sys; sys.stdout.write('.'.join(str(n) for n in sys.version_info[:3]))"


def parse_version(text):
    """``"3.7.16"`` -> ``(3, 7, 16)``; None when *text* is not a version."""
    try:
        return tuple(int(part) for part in text.strip().split("."))
    except ValueError:
        return None


def too_old(host, version_text, interpreter):
    """The message for a host whose Python is older than :data:`MINIMUM`, or None."""
    version = parse_version(version_text)
    if version is None or version >= MINIMUM:
        return None
    return "pkgcache.fleet needs Python %s+ on managed hosts, %s has %s (%s); set ansible_python_interpreter " \
        "to a newer one" % (".".join(str(n) for n in MINIMUM), host, version_text.strip(), interpreter)


def module_never_ran(result):
    """True when the module's process gave no result: it crashed before it could say why."""
    return bool(result.get("failed")) and "module_stderr" in result


class ModuleAction(ActionBase):
    """Runs the module as ansible-core's ``normal`` action does; after a module that never ran,
    checks the interpreter's version and, when it is too old, says so instead."""

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(ModuleAction, self).run(tmp, task_vars)
        del tmp
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        if module_never_ran(result):
            message = self._old_python(task_vars or {})
            if message:
                # The wrapper's exception only says its output was not JSON; the stderr stays.
                result.pop("exception", None)
                result["msg"] = message
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _old_python(self, task_vars):
        # The interpreter the module was started with (ansible-core's own "interpreter not found"
        # message reads the same attribute).
        interpreter = (getattr(self, "_used_interpreter", None) or "").lstrip("#!").strip()
        if not interpreter:
            return None
        done = self._low_level_execute_command("%s -c %s" % (interpreter, shlex.quote(PROBE)))
        if done.get("rc") != 0:
            return None
        host = task_vars.get("inventory_hostname") or self._play_context.remote_addr
        return too_old(host, done.get("stdout") or "", interpreter)
