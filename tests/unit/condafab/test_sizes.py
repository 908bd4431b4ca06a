"""Byte counts in the manifest agree with du and find run on the built tree."""

from .ondisk import du, find_sizes


def test_cache_bytes_agree_with_du_and_find(small):
    for cache in small.caches.values():
        real = small.real(cache.path)
        assert cache.apparent_bytes == find_sizes(real, "f,l")  # every name, as conda clean sums
        # du --apparent-size counts each inode once and adds directory sizes
        assert cache.unique_bytes + find_sizes(real, "d") == du(real, "--apparent-size")
        assert cache.unique_bytes < cache.apparent_bytes or not cache.internal_hardlink
        assert cache.disk_bytes == du(real)


def test_env_bytes_agree_with_find(small):
    roots = {inst.root for inst in small.installations}
    checked = 0
    for env in small.envs.values():
        if env.prefix in roots:  # a root prefix also holds pkgs/ and envs/
            continue
        assert env.apparent_bytes == find_sizes(small.real(env.prefix), "f,l")
        checked += 1
    assert checked >= 4


def test_tarball_sizes_are_the_files_sizes(small):
    for cache in small.caches.values():
        real = small.real(cache.path)
        assert cache.tarball_bytes == {fn: (real / fn).stat().st_size for fn in cache.tarballs}
