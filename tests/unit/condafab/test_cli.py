"""``python -m condafab build``: the summary names what was built, the manifest file matches."""

import json

from condafab.__main__ import main


def test_cli_builds_scalable_fixture_and_writes_manifest(tmp_path, capsys):
    out = tmp_path / "manifest.json"
    assert main(["build", "--root", str(tmp_path / "root"), "--seed", "3", "--packages", "15", "--files", "3", "--envs", "3", "--manifest", str(out)]) == 0
    summary = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["layout"] == "scale" and len(data["envs"]) == 4  # base + 3
    cache = data["caches"]["/opt/conda/pkgs"]
    assert f"{cache['counts']['tarballs']} tarballs, {cache['counts']['extracted']} extracted" in summary
    assert (tmp_path / "root/opt/conda/conda-meta/history").is_file()


def test_cli_builds_a_layout_for_given_users(tmp_path, capsys):
    assert main(["build", "--root", str(tmp_path), "--seed", "4", "--layout", "two_installs", "--user", "carol:2001:2001:/home/carol"]) == 0
    assert "/home/carol/miniforge3" in capsys.readouterr().out
    assert (tmp_path / "home/carol/miniforge3/conda-meta/history").is_file()
