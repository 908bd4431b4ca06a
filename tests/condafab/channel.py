"""A file:// channel of a catalog's archives, and installs from it by the real py-rattler: the
environments and rattler caches tests of rattler/pixi caches run on."""

import asyncio

from .packages import dumps

SUBDIRS = ("linux-64", "noarch")


def file_channel(catalog, top):
    """Write the catalog's archives with ``repodata.json`` per subdir under ``top``; its file:// URL."""
    repodata = {sub: {"info": {"subdir": sub}, "packages": {}, "packages.conda": {}, "repodata_version": 1} for sub in SUBDIRS}
    for pkg in catalog.packages:
        (top / pkg.subdir).mkdir(parents=True, exist_ok=True)
        (top / pkg.subdir / pkg.fn).write_bytes(pkg.archive.data)
        entry = dict(pkg.index_json(), md5=pkg.archive.md5, sha256=pkg.archive.sha256, size=pkg.archive.size)
        repodata[pkg.subdir]["packages.conda" if pkg.ext == ".conda" else "packages"][pkg.fn] = entry
    for sub, data in repodata.items():
        (top / sub).mkdir(parents=True, exist_ok=True)
        (top / sub / "repodata.json").write_bytes(dumps(data))
    return top.as_uri()


def rattler_install(channel, specs, prefix, cache_dir):
    """Solve ``specs`` from ``channel`` and install them into ``prefix`` through the rattler package
    cache ``cache_dir`` (a cache root's ``pkgs``) with py-rattler; the installed file names."""
    import rattler  # a test dependency; imported here so that condafab works without it

    async def run():
        solved = await rattler.solve(sources=[channel], specs=specs, platforms=list(SUBDIRS))
        await rattler.install(solved, target_prefix=prefix, cache_dir=cache_dir, show_progress=False)
        return [record.file_name for record in solved]

    return asyncio.run(run())
