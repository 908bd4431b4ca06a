"""A fleet of SSH test hosts on one machine, without a container engine.

Each host is a Linux mount + PID + UTS + IPC namespace chrooted into an overlay of one cached
Debian rootfs, with ``sshd`` as its PID 1 bound to its own loopback address.  The controller
reaches the hosts over real SSH exactly as it would reach a fleet of VMs, and can still write
fixtures straight into every host's tree (``root_of(host)``) because the overlays are mounted in
the controller's namespace.

Entry points: ``python -m testfleet rootfs|up|down|status|demo`` and :class:`testfleet.fleet.Fleet`.
"""
