"""The collection builds, installs from its tarball offline, documents every module and role, and
can go into an execution environment (ansible-builder's introspection and `create`, offline).

A release is built from a developer's work tree, which also holds virtualenvs, caches, test
output and old tarballs. The build here starts from the files git sees and then plants exactly
that kind of debris, so the tarball check proves `build_ignore` keeps it out rather than
relying on a clean checkout. No fleet is needed.
"""

import ast
import json
import re
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTION_TREE = REPO_ROOT / "tests" / "tools" / "collection_tree.py"

# Top-level content that must ship whole: what users install the collection for.
SHIPPED_DIRS = ("plugins", "roles", "playbooks", "meta", "docs", "changelogs")
# Caches that keep themselves out of git with a `.gitignore` of their own, so .gitignore
# does not name them, yet they appear in every work tree where the tests have run.
SELF_IGNORING_CACHES = (".pytest_cache/v/cache/lastfailed",)


def module_names():
    """Modules as the collection defines them: one file per module under plugins/modules."""
    return sorted(p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def role_names():
    """Roles that declare their interface (meta/argument_specs.yml), which ansible-doc shows."""
    return sorted(p.parts[-3] for p in (REPO_ROOT / "roles").glob("*/meta/argument_specs.yml"))


def debris_paths(gitignore):
    """Return one concrete work-tree path per .gitignore pattern, plus self-ignoring caches.

    A pattern names what the project's tools leave behind (`.venv/`, `tests/output/`,
    `*.pyc`, old tarballs...); whatever git is told to ignore must not ship either.
    """
    paths = list(SELF_IGNORING_CACHES)
    for line in gitignore.splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith(("#", "!")):
            continue
        is_dir = pattern.endswith("/")
        concrete = pattern.strip("/").replace("*", "planted")
        paths.append(concrete + "/planted.txt" if is_dir else concrete)
    return paths


def run(command, **kwargs):
    """Run a command, failing the test with its output when it exits non-zero."""
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, check=False, **kwargs)
    assert result.returncode == 0, "{0} exited {1}:\n{2}".format(command, result.returncode, result.stdout)
    return result.stdout


@pytest.fixture(scope="module")
def debris():
    """Work-tree paths that must never ship."""
    return debris_paths((REPO_ROOT / ".gitignore").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def work_tree(debris, tmp_path_factory):
    """A copy of the collection as git sees it, with a developer's debris planted in it."""
    dest = tmp_path_factory.mktemp("source")
    tree = Path(run([sys.executable, str(COLLECTION_TREE), str(dest)]).strip())
    for relative in debris:
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("debris\n", encoding="utf-8")
    return tree


@pytest.fixture(scope="module")
def tarball(work_tree, tmp_path_factory):
    """The artifact `ansible-galaxy collection build` makes from the work tree."""
    dist = tmp_path_factory.mktemp("dist")
    run([str(BIN / "ansible-galaxy"), "collection", "build", str(work_tree), "--output-path", str(dist)])
    (artifact,) = dist.glob("*.tar.gz")
    return artifact


@pytest.fixture(scope="module")
def members(tarball):
    """Names of the files and directories inside the tarball."""
    with tarfile.open(tarball) as archive:
        return {name.rstrip("/") for name in archive.getnames()}


@pytest.fixture(scope="module")
def collections_path(tarball, tmp_path_factory):
    """A collections path holding only the collection installed from the tarball, offline."""
    path = tmp_path_factory.mktemp("collections")
    # --force: the work tree's own view of the collection (ANSIBLE_COLLECTIONS_PATH, as the Makefile
    # sets it) would otherwise count as "already installed" and nothing would land in *path*.
    run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force",
         "--collections-path", str(path), str(tarball)])
    return path


def test_tarball_is_named_after_galaxy_yml(tarball):
    meta = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    assert tarball.name == "{namespace}-{name}-{version}.tar.gz".format(**meta)


def test_tarball_ships_every_content_file_and_the_readme(work_tree, members):
    meta = yaml.safe_load((work_tree / "galaxy.yml").read_text(encoding="utf-8"))
    content = {
        path.relative_to(work_tree).as_posix()
        for top in SHIPPED_DIRS if (work_tree / top).is_dir()
        for path in (work_tree / top).rglob("*") if path.is_file() and "__pycache__" not in path.parts
    }
    expected = content | {"MANIFEST.json", "FILES.json", meta["readme"]}
    assert sorted(expected - members) == []


def test_build_ignore_keeps_work_tree_debris_out(debris, members):
    leaked = sorted(set(debris) & members)
    assert leaked == [], "build_ignore in galaxy.yml lets these into the tarball: {0}".format(leaked)


def installed_doc(collections_path, plugin_type, fqcn):
    """ansible-doc's JSON for one plugin, found only in the collection installed from the tarball."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    return json.loads(run([str(BIN / "ansible-doc"), "--json", "-t", plugin_type, fqcn], env=env))[fqcn]


@pytest.mark.parametrize("module", module_names())
def test_installed_collection_documents_module(collections_path, module):
    doc = installed_doc(collections_path, "module", "pkgcache.fleet." + module)["doc"]
    assert doc["module"] == module
    assert doc["collection"] == "pkgcache.fleet"
    assert doc["short_description"]
    assert str(collections_path) in doc["filename"]


@pytest.mark.parametrize("role", role_names())
def test_installed_collection_documents_role(collections_path, role):
    doc = installed_doc(collections_path, "role", "pkgcache.fleet." + role)
    assert doc["collection"] == "pkgcache.fleet"
    assert doc["entry_points"]["main"]["short_description"]
    assert str(collections_path) in doc["path"]


def requirement_lines(path):
    """Requirement lines of a pip or bindep file, as ansible-builder reads them (no comments)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def controller_imports():
    """Top-level modules the controller-side plugins import (action, filter, plugin_utils)."""
    names = set()
    for kind in ("action", "filter", "plugin_utils"):
        for path in (REPO_ROOT / "plugins" / kind).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names


def test_ee_python_requirements_cover_what_controller_plugins_import():
    third_party = sorted(controller_imports() - set(sys.stdlib_module_names) - {"ansible", "ansible_collections"})
    declared = [line.split("=")[0].split("<")[0].split(">")[0].strip().lower()
                for line in requirement_lines(REPO_ROOT / "requirements.txt")]
    assert [name for name in third_party if name.lower() not in declared] == []


def test_ee_dependencies_are_file_names_in_the_installed_collection(collections_path):
    installed = collections_path / "ansible_collections" / "pkgcache" / "fleet"
    meta = yaml.safe_load((installed / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    for kind in ("python", "system"):
        name = meta["dependencies"][kind]
        assert isinstance(name, str) and not os.path.isabs(name), (kind, name)
        assert (installed / name).is_file(), name


@pytest.fixture(scope="module")
def ee_context(tarball, tmp_path_factory):
    """`ansible-builder create` for an EE that installs the collection from its tarball."""
    work = tmp_path_factory.mktemp("ee")
    definition = {
        "version": 3,
        # create only writes the build context; the image is never pulled here.
        "images": {"base_image": {"name": "localhost/pkgcache-ee-base:latest"}},
        "dependencies": {
            "ansible_core": {"package_pip": pinned("ansible-core")},
            "ansible_runner": {"package_pip": pinned("ansible-runner")},
            "galaxy": {"collections": [{"name": "collections/" + tarball.name, "type": "file"}]},
            # What an operator adds for their own playbooks: inline lists belong here.
            "python": ["jmespath"],
        },
        "additional_build_files": [{"src": str(tarball), "dest": "collections"}],
    }
    (work / "execution-environment.yml").write_text(yaml.safe_dump(definition), encoding="utf-8")
    context = work / "context"
    run([str(BIN / "ansible-builder"), "create", "--file", str(work / "execution-environment.yml"),
         "--context", str(context), "--output-filename", "Containerfile"], cwd=str(work))
    return context


def pinned(package):
    """`package==version` as requirements/controller.txt pins it."""
    for line in requirement_lines(REPO_ROOT / "requirements" / "controller.txt"):
        if line.lower().startswith(package + "=="):
            return line
    raise AssertionError("{0} is not pinned in requirements/controller.txt".format(package))


def test_ansible_builder_create_writes_a_context_that_installs_the_collection(ee_context, tarball):
    containerfile = (ee_context / "Containerfile").read_text(encoding="utf-8")
    assert "introspect" in containerfile and "ansible-galaxy collection install" in containerfile
    galaxy = yaml.safe_load((ee_context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    assert galaxy["collections"] == [{"name": "collections/" + tarball.name, "type": "file"}]
    assert (ee_context / "_build" / "collections" / tarball.name).read_bytes() == tarball.read_bytes()


def test_ee_build_introspection_accepts_the_installed_collection(ee_context, collections_path, tmp_path):
    """The step of an EE build that failed on an inline list: the context's own introspect.py,
    run as the Containerfile runs it, over the collection installed from the tarball."""
    out = run([sys.executable, str(ee_context / "_build" / "scripts" / "introspect.py"), "introspect",
               "--user-pip", str(ee_context / "_build" / "requirements.txt"),
               "--write-pip", str(tmp_path / "requirements.txt"),
               "--write-bindep", str(tmp_path / "bindep.txt"),
               str(collections_path)])
    data = yaml.safe_load(out.split("---\n", 1)[1])
    # Each line names the requirement and, after "  # from collection ", who asked for it.
    python = [line.split("  # from collection ") for line in data["python"]]
    system = [line.split("  # from collection ") for line in data["system"]]
    assert ["jmespath", "user"] in python
    assert sorted(req for req, origin in python if origin == "pkgcache.fleet") \
        == sorted(requirement_lines(REPO_ROOT / "requirements.txt"))
    assert sorted(req for req, origin in system if origin == "pkgcache.fleet") \
        == sorted(requirement_lines(REPO_ROOT / "bindep.txt"))
    # The file pip installs in the EE holds the user's requirement and ours.
    written = [line.split()[0] for line in requirement_lines(tmp_path / "requirements.txt")]
    assert "jmespath" in written
    assert all(req.split()[0] in written for req in requirement_lines(REPO_ROOT / "requirements.txt"))


def test_ansible_builder_introspect_command_reads_the_installed_collection(collections_path):
    out = run([str(BIN / "ansible-builder"), "introspect", str(collections_path)])
    assert "python" in yaml.safe_load(out.split("---\n", 1)[1])


# Trees that only develop and test the collection; users install it for none of them.
DEVELOPMENT_DIRS = ("tests", "molecule", "bench", ".ci")


def test_tarball_ships_the_license_text(members, tarball):
    assert "COPYING" in members
    with tarfile.open(tarball) as archive:
        text = archive.extractfile("COPYING").read().decode("utf-8")
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text
    meta = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    assert meta["license"] == ["GPL-3.0-or-later"]


def test_tarball_leaves_development_trees_out(members):
    assert sorted(name for name in members if name.split("/")[0] in DEVELOPMENT_DIRS) == []


def readme():
    return (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_module_table_lists_every_module():
    rows = re.findall(r"^\| `pkgcache\.fleet\.(\w+)` \|", readme(), re.MULTILINE)
    assert sorted(rows) == module_names()


def test_readme_role_table_lists_every_role():
    rows = re.findall(r"^\| \[`(\w+)`\]\(roles/\1/README\.md\) \|", readme(), re.MULTILINE)
    assert sorted(rows) == role_names()


def test_readme_names_only_report_files_the_report_writes():
    from ansible_collections.pkgcache.fleet.plugins.plugin_utils import _render

    basename = yaml.safe_load((REPO_ROOT / "roles" / "fleet_report" / "defaults" / "main.yml").read_text())[
        "fleet_report_basename"]
    written = {"{0}.{1}".format(basename, ext) for ext in _render.EXTENSIONS.values()}
    cited = set(re.findall(r"\bfleet[\w-]*\.(?:json|csv|md|html)\b", readme()))
    assert cited and sorted(cited - written) == []


def test_readme_install_section_installs_the_tarball_this_build_makes(tarball):
    assert "ansible-galaxy collection install {0}".format(tarball.name) in readme()


def compatibility_rows():
    section = readme().split("## Compatibility", 1)[1].split("\n## ", 1)[0]
    return dict((cells[0], cells[1]) for cells in (
        [cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| side")))


def test_readme_compatibility_matrix_is_what_these_tests_run_on():
    """The matrix claims only what CI runs: this interpreter and this ansible-core on the
    controller, and the oldest managed-host Python the target code is executed by."""
    from ansible.release import __version__ as core_version

    oldest = (REPO_ROOT / "tests/unit/plugins/module_utils/test_oldest_python.py").read_text()
    oldest = re.search(r'^OLDEST = "([\d.]+)"', oldest, re.MULTILINE).group(1)
    rows = compatibility_rows()
    assert rows["controller: ansible-core"] == ".".join(core_version.split(".")[:2])
    assert rows["controller: Python"] == "{0}.{1}".format(*sys.version_info)
    assert rows["managed hosts: Python"].split(" and ")[0] == oldest
