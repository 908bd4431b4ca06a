"""One test host: an overlay tree plus a namespace whose PID 1 is ``sshd``.

The overlay is mounted in the controller's namespace so fixtures can be written into it from
outside; everything the host itself needs (``/proc``, a minimal ``/dev``, ``/run``) is mounted
inside its private mount namespace and vanishes with it.  Processes are remembered by PID *and*
start time, so a stale state file can never make us signal a recycled PID.
"""

import os
import shlex
import signal
import subprocess
import time

# Runs as PID 1 of the new PID namespace (unshare --fork), with the controller's tools, then
# becomes the host's sshd.  It first drops the namespace's copies of other hosts' trees (its own
# fleet's and other fleets'): a copy would keep that tree mounted after its owner unmounted it.
PID1_SCRIPT = """\
R={root}
{detach}
hostname {hostname}
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t tmpfs -o mode=0755,nosuid,size=1m dev "$R/dev"
for node in null zero full random urandom tty; do
  : > "$R/dev/$node"
  mount --bind "/dev/$node" "$R/dev/$node"
done
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs -o nosuid,nodev,mode=0755 run "$R/run"
mkdir -m 0755 "$R/run/sshd"
exec chroot "$R" /usr/sbin/sshd -D -e -o ListenAddress={address}:22
"""

LOG_NAME = "sshd.log"  # the PID-1 script's and sshd's output, next to the script
# Slave propagation: a mount the controller adds under a host's (shared) tree later on, such as a
# small tmpfs for exact free-space checks, appears inside the host; the host's own mounts never
# leak out.
UNSHARE = ["unshare", "--mount", "--propagation", "slave", "--uts", "--ipc", "--pid", "--fork",
           "--kill-child"]


class Proc(object):
    """A process identity that survives PID reuse: (pid, start time in clock ticks)."""

    def __init__(self, pid, start):
        self.pid = pid
        self.start = start

    @classmethod
    def of(cls, pid):
        start = _start_time(pid)
        return cls(pid, start) if start is not None else None

    def as_dict(self):
        return {"pid": self.pid, "start": self.start}

    @classmethod
    def from_dict(cls, data):
        return cls(data["pid"], data["start"]) if data else None

    def alive(self):
        """Running (not a zombie) and still the process we started."""
        _reap(self.pid)
        return _start_time(self.pid) == self.start

    def signal(self, signum):
        if self.alive():
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


def _start_time(pid):
    """Start time of a live, non-zombie *pid*, or None."""
    try:
        with open("/proc/{0}/stat".format(pid)) as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in "ZX" else int(fields[19])


def _reap(pid):
    """Collect our own exited child so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _child_of(pid, deadline):
    """The first child of *pid* (unshare's forked PID 1), waiting for the fork to happen."""
    path = "/proc/{0}/task/{0}/children".format(pid)
    while time.monotonic() < deadline:
        try:
            with open(path) as handle:
                children = handle.read().split()
        except OSError:
            return None
        if children:
            return Proc.of(int(children[0]))
        time.sleep(0.01)
    return None


def processes_under(prefix):
    """Processes that belong to hosts under *prefix*: chrooted there (a host's PID 1 and its
    descendants) or an ``unshare`` running a PID-1 script from there.  Finds what a crash kept out of
    the state file."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            root = os.readlink("/proc/{0}/root".format(entry))
            with open("/proc/{0}/cmdline".format(entry), "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        ours = root.startswith(prefix) or (
            argv[0] == b"unshare" and any(prefix.encode() in arg for arg in argv))
        if ours:
            found.append(Proc.of(int(entry)))
    return [proc for proc in found if proc is not None]


def mount_overlay(lower, upper, work, merged):
    for path in (upper, work, merged):
        os.makedirs(path, exist_ok=True)
    options = "lowerdir={0},upperdir={1},workdir={2}".format(lower, upper, work)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, merged], check=True)
    subprocess.run(["mount", "--make-shared", merged], check=True)


def is_mounted(path):
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as handle:
        return any(line.split()[4] == real for line in handle)


def unmount(path):
    """Unmount *path* if mounted; detach lazily only when a normal unmount is refused."""
    if not is_mounted(path):
        return
    if subprocess.run(["umount", path], stderr=subprocess.DEVNULL, check=False).returncode != 0:
        subprocess.run(["umount", "--lazy", path], check=True)


def launch(root, hostname, address, workdir, deadline, foreign=()):
    """Start the host's namespace; return (unshare Proc, PID-1 Proc, Popen).

    *foreign* lists other hosts' mount points, detached from the new namespace before it starts.
    The PID-1 script and sshd's log go to *workdir*, outside the host's tree."""
    script = os.path.join(workdir, "pid1.sh")
    # One umount for all of them (it goes on past a failure): one process per tree in every
    # host made start-up quadratic, ~40,000 processes at 200 hosts.
    detach = "umount --lazy {0} 2>/dev/null || :".format(
        " ".join(shlex.quote(point) for point in sorted(foreign, key=len, reverse=True))) if foreign else ""
    with open(script, "w") as handle:
        handle.write(PID1_SCRIPT.format(root=shlex.quote(root), hostname=shlex.quote(hostname),
                                        address=address, detach=detach))
    with open(os.path.join(workdir, LOG_NAME), "ab") as log:
        popen = subprocess.Popen(UNSHARE + ["--", "/bin/sh", "-e", script],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    return Proc.of(popen.pid), _child_of(popen.pid, deadline), popen


def stop_all(hosts, grace=3.0, patience=10.0):
    """Stop hosts given as (unshare Proc, PID-1 Proc) pairs, all at once.

    SIGTERM goes to each PID 1 (unshare itself ignores SIGTERM); the kernel kills every other
    process of a PID namespace when its PID 1 exits, and unshare exits right after its child,
    dropping the last reference to the mount namespace.  Whatever lingers past *grace* gets
    SIGKILL (unshare's --kill-child covers a PID 1 we never identified).
    """
    live = [p for pair in hosts for p in pair if p is not None and p.alive()]
    for unshare, pid1 in hosts:
        if pid1 is not None:
            pid1.signal(signal.SIGTERM)
        elif unshare is not None:
            unshare.signal(signal.SIGKILL)
    for signum, wait in ((signal.SIGKILL, grace), (None, patience)):
        deadline = time.monotonic() + wait
        while any(p.alive() for p in live):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        else:
            return
        if signum is None:
            raise RuntimeError("processes survived SIGKILL: {0}".format(
                [p.pid for p in live if p.alive()]))
        for proc in live:
            proc.signal(signum)
