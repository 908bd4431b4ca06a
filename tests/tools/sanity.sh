#!/usr/bin/env bash
# ansible-test sanity, offline and without containers.
#
# ansible-test wants the collection at .../ansible_collections/<namespace>/<name>/ and judges
# every file in it, so it runs on the clean copy collection_tree.py makes (what git sees; no
# tests/output/, no symlinks).
#
# Usage: tests/tools/sanity.sh [extra ansible-test sanity arguments, e.g. --test pep8]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON_VERSION=3.11
export PATH="$VENV/bin:$PATH"

# ansible-test bootstraps pip in each test venv with a get-pip script it would download from
# the internet; it uses a cached copy first. The pip version (and so the cache file name)
# comes from ansible-test itself, so an ansible-core upgrade cannot silently miss the cache.
install_get_pip_stand_in() {
    local pip_version cache
    pip_version="$("$VENV/bin/python" - "$PYTHON_VERSION" <<'EOF'
import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])
EOF
)"
    cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
    mkdir -p "$(dirname "$cache")"
    install -m 0644 "$ROOT/tests/tools/get_pip_offline.py" "$cache"
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pkgcache-sanity.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

install_get_pip_stand_in
COLLECTION="$("$VENV/bin/python" "$ROOT/tests/tools/collection_tree.py" "$WORK")"

cd "$COLLECTION"
# A repository of its own lets ansible-test list content the way it does in CI, and keeps it
# from walking up into the enclosing work tree's repository.
git init --quiet
git add --all
git -c user.name=sanity -c user.email=sanity@localhost commit --quiet --message "sanity snapshot"

start=$SECONDS
status=0
ansible-test sanity --local --python "$PYTHON_VERSION" --requirements --color no "$@" 2>&1 |
    tee "$WORK/sanity.log" || status=$?
# ansible-test only warns when a test's program (shellcheck, pwsh, ...) is missing and then
# reports that test as passed; a gate must not pass on a test that did not run.
if grep -q '^WARNING: Required program .* not found' "$WORK/sanity.log"; then
    echo "sanity: a test could not run for lack of a program (see WARNING above; make apt)" >&2
    status=1
fi
echo "sanity: exit $status after $((SECONDS - start)) s"
exit "$status"
