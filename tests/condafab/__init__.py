"""condafab: build, under any filesystem root, the trees conda (and pip/uv) leave on a Linux host.

Controller-side test tooling.  A fixture is deterministic per seed, made of real archives, real
hard links and symlinks, and comes with a :class:`Manifest` of what the builder *intended* (which
packages every environment references, which are orphans, ...) so tests can judge module output
without re-deriving it with the module's own logic.  See ``README.md`` next to this file.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    """A login on the host being populated: owner of a home, caches and environments.

    ``home`` is the path *inside* the host (``/home/alice``); uid/gid are applied only when the
    builder runs as root, so unit tests running unprivileged still get the same tree.
    """

    name: str
    uid: int
    gid: int
    home: str


# Imported after User: the submodules take User from here.
from condafab.host import HostBuilder  # noqa: E402  pylint: disable=wrong-import-position
from condafab.manifest import Manifest  # noqa: E402  pylint: disable=wrong-import-position
from condafab.scale import build  # noqa: E402  pylint: disable=wrong-import-position
from condafab.layouts import LAYOUTS  # noqa: E402  pylint: disable=wrong-import-position

__all__ = ["User", "HostBuilder", "Manifest", "build", "LAYOUTS"]
