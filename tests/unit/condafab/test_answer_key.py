"""The manifest's answer key agrees with what is on disk, derived independently here."""

import os

from condafab.manifest import SOFTLINK

from .ondisk import all_records, extracted_dirs, has_multilink, tarballs


def _references(manifest):
    """``{(cache, dist): {prefix: link type}}`` from every record on disk."""
    refs = {}
    for prefix, _stem, record in all_records(manifest):
        cache, dist = record["extracted_package_dir"].rsplit("/", 1)
        refs.setdefault((cache, dist), {})[prefix] = record["link"]["type"]
    return refs


def test_cache_contents_and_answer_key(small):
    refs = _references(small)
    for cache in small.caches.values():
        real = small.real(cache.path)
        on_disk = extracted_dirs(real)
        assert on_disk == cache.extracted and tarballs(real) == cache.tarballs
        used = {dist for (c, dist) in refs if c == cache.path}
        assert cache.orphans == sorted(set(on_disk) - used)
        assert cache.unused_tarballs == sorted(fn for fn in cache.tarballs if fn.rsplit(".conda", 1)[0].rsplit(".tar.bz2", 1)[0] not in used)
        assert cache.referenced_by == {d: sorted(refs[(cache.path, d)]) for d in sorted(used)}
        assert cache.multiply_linked == [d for d in on_disk if has_multilink(real / d)]
        soft = sorted(d for (c, d), by in refs.items() if c == cache.path and set(by.values()) == {SOFTLINK})
        assert cache.softlink_only == soft
        for dist in cache.metadata_only:
            assert sorted(os.listdir(real / dist)) == ["info"]
        assert {"urls.txt", "urls"} <= set(os.listdir(real)) and cache.writable


def test_fixture_has_every_interesting_case(small):
    cache = small.cache("/opt/conda/pkgs")
    counts = cache.counts
    assert all(counts[k] > 0 for k in ("tarballs", "extracted", "orphans", "unused_tarballs", "metadata_only", "softlink_only")), counts
    assert cache.tarball_only and cache.extracted_only and cache.internal_hardlink and cache.locks and cache.tempfiles
    assert cache.trash and cache.logs and cache.index_cache and cache.partial
    numpy = [d for d in cache.extracted + cache.tarball_only if d.startswith("numpy-")]
    assert len(numpy) == 3  # several versions of one package
    real = small.real(cache.path)
    for name in cache.trash:
        assert (real / ".trash" / name).is_file()
    for name in cache.logs:
        assert (real / ".logs" / name).is_file()
    assert sorted(os.listdir(real / "cache")) == cache.index_cache


def test_users_environments_txt_lists_live_envs_and_stale_ones(small):
    (user,) = small.users.values()
    listed = (small.real(user.home) / ".conda/environments.txt").read_text().split()
    assert listed == user.environments_txt
    for entry in listed:
        exists = (small.real(entry) / "conda-meta/history").is_file()
        assert exists != (entry in user.stale_entries)
    assert user.pkgs_dirs == [f"{user.home}/.conda/pkgs"]
