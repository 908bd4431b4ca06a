"""A restore kit places each recorded package at ``channel/<subdir>/<fn>``; the records are their
environment user's words, so a subdir that is no channel's must never become a place root writes."""

from types import SimpleNamespace

from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_envs import plan_environments


def environment(prefix, subdir, missing=()):
    package = {"fn": "x-1.0-0.tar.bz2", "sha256": "0" * 64, "subdir": subdir}
    return {"prefix": prefix, "name": prefix.rsplit("/", 1)[1], "explicit": [package], "missing": list(missing),
            "unreadable": []}


def test_a_record_whose_subdir_leaves_the_kit_rejects_its_environment(tmp_path):
    envs = [environment("/home/alice/envs/abs", "/etc/evil.d"), environment("/home/alice/envs/up", "../../../etc"),
            environment("/home/alice/envs/dot", "."), environment("/home/bob/envs/ok", "linux-64", missing=["x"])]
    manifest = SimpleNamespace(environments=envs, path="/backup/m.json")
    items = {i.environment["prefix"]: i for i in plan_environments(None, manifest, ["*"], str(tmp_path / "envs"))}
    for prefix, subdir in (("/home/alice/envs/abs", "'/etc/evil.d'"), ("/home/alice/envs/up", "'../../../etc'"),
                           ("/home/alice/envs/dot", "'.'")):
        assert items[prefix].action == "rejected"
        assert items[prefix].reason == "records name a subdir that is not a channel's: %s" % subdir
    assert items["/home/bob/envs/ok"].reason.startswith("incomplete in the backup")
