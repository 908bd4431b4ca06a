"""A process holding mamba's lock on a file, for tests of code that must respect it."""

import subprocess
import sys

_HOLD = ("import fcntl, os, sys, time\n"
         "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)\n"
         "fcntl.lockf(fd, fcntl.LOCK_EX, 1, 21)\n"
         "print('locked', flush=True)\n"
         "time.sleep(600)\n")


class Holder:
    """Another process holding mamba's lock on ``path``: ``fcntl(F_SETLK)`` of one byte at offset
    21, a POSIX record lock (libmamba ``core/util.cpp`` ``LockFileOwner``), until it is stopped.
    POSIX locks belong to the inode, so a fleet host's processes see one held from the controller."""

    def __init__(self, path):
        self.process = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE)
        assert self.process.stdout.readline().strip() == b"locked"

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()
