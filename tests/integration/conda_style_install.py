"""What conda does to put one package into a package cache, offline, run on a test host as a user.

Usage: python3 conda_style_install.py TARBALL URL PKGS_DIR...   (prints {"cache": ..., "extracted": ...})

The steps and rules are conda's: the first writable ``pkgs_dirs`` entry
(``PackageCacheData.first_writable``: writable when ``urls.txt`` opens for append, and a cache
without it is created with ``urls.txt`` and ``urls``, when that is allowed), the download as
``<fn>.partial`` renamed into place, an existing extracted dir removed before extracting, the archive's
own modes applied (``tarfile``), the URL appended to ``urls.txt``.  The umask is the usual 022.
"""

import errno
import json
import os
import shutil
import sys
import tarfile


def is_writable(pkgs_dir):
    """conda's ``PackageCacheData._check_writable`` with ``file_path_is_writable``."""
    magic = os.path.join(pkgs_dir, "urls.txt")
    if not os.path.isfile(magic):
        return None
    try:
        with open(magic, "a+"):
            return True
    except OSError:
        return False


def create(pkgs_dir):
    """conda's ``create_package_cache_directory``."""
    try:
        os.makedirs(pkgs_dir, exist_ok=True)
        for marker in ("urls.txt", "urls"):
            with open(os.path.join(pkgs_dir, marker), "a"):
                pass
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return False
        raise
    return True


def first_writable(pkgs_dirs):
    for pkgs_dir in pkgs_dirs:
        writable = is_writable(pkgs_dir)
        if writable or (writable is None and create(pkgs_dir)):
            return pkgs_dir
    raise SystemExit("NoWritablePkgsDirError: %s" % pkgs_dirs)


def main(tarball, url, *pkgs_dirs):
    os.umask(0o022)
    cache = first_writable([os.path.expanduser(d) for d in pkgs_dirs])
    fn = os.path.basename(tarball)
    dest = os.path.join(cache, fn)
    shutil.copyfile(tarball, dest + ".partial")
    os.rename(dest + ".partial", dest)
    extracted = os.path.join(cache, fn[: -len(".tar.bz2")])
    if os.path.lexists(extracted):
        shutil.rmtree(extracted)
    with tarfile.open(dest) as archive:
        archive.extractall(extracted)
    with open(os.path.join(cache, "urls.txt"), "a") as urls:
        urls.write(url + "\n")
    print(json.dumps({"cache": cache, "extracted": extracted}))


if __name__ == "__main__":
    main(*sys.argv[1:])
