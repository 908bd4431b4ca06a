# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module file as Ansible does (``stop_at_step.py MODULE ARGS_FILE``), numbering the
filesystem changes it makes below ``STEP_ROOT`` and stopping itself (SIGSTOP) just before change
number ``STEP``, so the test can SIGKILL it there: a real kill of the real run, between two real
steps.

The changes are seen through Python's audit hooks (PEP 578), which CPython raises inside each call
before the system call is made: nothing of the module is replaced.  A change is a file opened for
writing or created, a rename, an unlink, a mkdir or rmdir, a link; calls relative to a directory
fd count too (a module makes no other relative ones; the removal pipeline makes only those).  Each step is appended to the file
``STEP_LOG`` as it happens (``<n> <event> <path>``).  Run with ``-B``: compiling bytecode would
write too.
"""

import os
import runpy
import signal
import sys

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
CHANGES = {"os.rename": 0, "os.remove": 0, "os.mkdir": 0, "os.rmdir": 0, "os.link": 1, "os.symlink": 1, "open": 0}


def main():
    module, args_file = sys.argv[1:3]
    root = os.environ["STEP_ROOT"].rstrip("/") + "/"
    stop_at = int(os.environ.get("STEP") or 0)
    log = os.open(os.environ["STEP_LOG"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    count = [0]

    def hook(event, args):
        which = CHANGES.get(event)
        if which is None:
            return
        path = args[which]
        if event == "open" and not (isinstance(args[2], int) and args[2] & WRITE_FLAGS):
            return
        path = os.fsdecode(path) if isinstance(path, (str, bytes)) else ""
        if not path or (os.path.isabs(path) and not path.startswith(root)):
            return
        count[0] += 1
        os.write(log, ("%d %s %s\n" % (count[0], event, path)).encode("utf-8", "surrogateescape"))
        if count[0] == stop_at:
            os.kill(os.getpid(), signal.SIGSTOP)

    sys.argv = [module, args_file]
    sys.addaudithook(hook)
    runpy.run_path(module, run_name="__main__")


if __name__ == "__main__":
    main()
