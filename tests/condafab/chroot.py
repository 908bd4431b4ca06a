"""Run code as if on the host a fixture describes: unit tests call the modules' logic there, and
benchmarks time it there.

condafab writes in-host absolute paths (``/opt/conda/...``) into records and configs, so the code
under test must see the fixture root as ``/``: a forked child chroots into it (we are root), calls
the function, and sends its JSON-able result back through a pipe.  Whatever the function measures
is measured inside the child, so fork and chroot stay outside the timed region.

With ``proc=True`` the child first enters a private mount namespace and bind-mounts the machine's
``/proc`` into the fixture, so code that looks for busy processes (``_procs.process_using``)
does the same work it does on a real host; the mount disappears with the child.
"""

import ctypes
import json
import os
import traceback

_CLONE_NEWNS = 0x00020000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18


def _libc_call(name, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (name, os.strerror(err)))


def _see_proc(fsroot):
    _libc_call("unshare", _CLONE_NEWNS)
    _libc_call("mount", None, b"/", None, _MS_REC | _MS_PRIVATE, None)
    target = os.path.join(str(fsroot), "proc")
    os.makedirs(target, exist_ok=True)
    _libc_call("mount", b"/proc", os.fsencode(target), None, _MS_BIND | _MS_REC, None)


def in_host(fsroot, func, *args, proc=False):
    """``func(*args)`` evaluated inside ``chroot(fsroot)`` in a child; returns its result.

    Everything ``func`` needs must be imported before the call: the fixture root has no Python.
    """
    if os.geteuid() != 0:
        raise PermissionError("running code on a fixture host needs root (chroot)")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        status = 0
        try:
            if proc:
                _see_proc(fsroot)
            os.chroot(str(fsroot))
            os.chdir("/")
            payload = {"ok": func(*args)}
        except BaseException:  # pylint: disable=broad-except  # reported to the parent
            payload = {"error": traceback.format_exc()}
            status = 1
        with os.fdopen(write_fd, "w") as out:
            out.write(json.dumps(payload, default=str))
        os._exit(status)  # pylint: disable=protected-access  # no parent cleanup in the child
    os.close(write_fd)
    with os.fdopen(read_fd) as stream:
        data = stream.read()
    os.waitpid(pid, 0)
    payload = json.loads(data)
    if "error" in payload:
        raise RuntimeError("in chroot %s:\n%s" % (fsroot, payload["error"]))
    return payload["ok"]
