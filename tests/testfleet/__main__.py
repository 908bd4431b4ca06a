"""Command line: ``python -m testfleet {rootfs,podman,up,down,status,demo}``."""

import argparse
import json
import signal
import subprocess
import sys
import time

from testfleet import demo, layouts, podman, rootfs
from testfleet.fleet import Fleet, claimed_state_dirs


def _rootfs(args):
    started = time.monotonic()
    path = rootfs.ensure()
    print("rootfs {0} ready ({1:.1f} s)".format(path, time.monotonic() - started))
    return 0


def _podman(args):
    started = time.monotonic()
    imported = podman.ensure_image(args.dir)
    print("image {0} {1} ({2:.1f} s); podman settings in {3}".format(
        podman.IMAGE, "imported" if imported else "ready", time.monotonic() - started, args.dir))
    return 0


def _up(args):
    # A SIGTERM mid-way must still run up's cleanup (it tears down on any BaseException).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    fleet = Fleet(args.state)
    started = time.monotonic()
    fleet.up(args.hosts, args.layouts.split(","), args.seed)
    print("{0} hosts up in {1:.1f} s; inventory {2}".format(
        len(fleet.hosts), time.monotonic() - started, fleet.inventory))
    return 0


def _down(args):
    started = time.monotonic()
    Fleet(args.state).down()
    print("fleet in {0} down in {1:.1f} s".format(args.state, time.monotonic() - started))
    return 0


def _status(args):
    if args.state is None:
        return _status_all()
    hosts = Fleet(args.state).describe()
    if not hosts:
        print("no fleet in {0}".format(args.state), file=sys.stderr)
        return 1
    if args.json:
        json.dump(hosts, sys.stdout, indent=1)
        print()
    for host in [] if args.json else hosts:
        print("{name}\t{address}\t{layout}\trunning={running}\tmounted={mounted}".format(**host))
    return 0 if all(h["running"] for h in hosts) else 1


def _status_all():
    """Every fleet on this machine (the subnet claims say where their state lives)."""
    for net, state_dir in sorted(claimed_state_dirs().items()):
        hosts = Fleet(state_dir).describe()
        print("127.100.{0}.0/24\t{1}\t{2} hosts, {3} running".format(
            net, state_dir, len(hosts), sum(h["running"] for h in hosts)))
    return 0


def _demo(args):
    return demo.run(args.playbook, args.report)


def parser():
    top = argparse.ArgumentParser(prog="python -m testfleet", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("rootfs", help="build the cached host image (once)").set_defaults(func=_rootfs)
    image = sub.add_parser("podman", help="import the rootfs as a podman image, with a private "
                                          "podman configuration and storage under --dir")
    image.add_argument("--dir", required=True, help="where containers.conf, storage.conf and the storage go")
    image.set_defaults(func=_podman)
    up = sub.add_parser("up", help="start N hosts and write an inventory")
    up.add_argument("--hosts", type=int, required=True)
    up.add_argument("--state", required=True, help="state directory (trees, keys, inventory)")
    up.add_argument("--layouts", default=layouts.BARE,
                    help="comma-separated, assigned round-robin; known: " + ",".join(layouts.NAMES + layouts.BY_NAME))
    up.add_argument("--seed", type=int, default=0, help="fixture seed base (host N gets base+N)")
    up.set_defaults(func=_up)
    down = sub.add_parser("down", help="stop hosts, unmount trees; safe on partial state")
    down.add_argument("--state", required=True)
    down.set_defaults(func=_down)
    status = sub.add_parser("status", help="list a fleet's hosts (exit 1 unless all run), "
                                           "or without --state every fleet on this machine")
    status.add_argument("--state")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)
    run_demo = sub.add_parser("demo", help="3 hosts, playbooks/site.yml, report path, teardown")
    run_demo.add_argument("--playbook", default=str(demo.SITE))
    run_demo.add_argument("--report", default=str(demo.REPORT))
    run_demo.set_defaults(func=_demo)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (RuntimeError, ValueError, subprocess.CalledProcessError) as error:
        print("testfleet {0}: {1}".format(args.command, error), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
