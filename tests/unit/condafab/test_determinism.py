"""One seed, one tree: the fixture is reproducible byte for byte, and seeds differ."""

from condafab.scale import build

from .ondisk import snapshot

SIZE = {"packages": 20, "files": 5, "envs": 3}


def _build(root, seed):
    manifest = build(root, seed, **SIZE)
    return snapshot(root), manifest.to_json().replace(str(root), "<fsroot>")


def test_same_seed_same_tree_and_manifest(tmp_path):
    tree_a, json_a = _build(tmp_path / "a", 99)
    tree_b, json_b = _build(tmp_path / "b", 99)
    assert tree_a == tree_b
    assert json_a == json_b


def test_other_seed_other_tree(tmp_path):
    assert _build(tmp_path / "a", 99)[0] != _build(tmp_path / "c", 100)[0]
