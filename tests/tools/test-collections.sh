#!/usr/bin/env bash
# Install the collections test scenarios need (containers.podman for the podman molecule scenario)
# into a collections path of their own, without Galaxy: pip fetches the pinned `ansible` wheel
# (hash-checked, cached across runs) and only the wanted collections are extracted from it.
#
# Usage: tests/tools/test-collections.sh DEST   (DEST/ansible_collections/<ns>/<name>)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
DEST="${1:?usage: test-collections.sh DEST}"
REQUIREMENTS="$ROOT/requirements/test-collections.txt"
COLLECTIONS=(containers/podman)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/pkgcache-fleet/wheels"

# The stamp names the requirement file's content: a new pin re-extracts, an unchanged one is a no-op.
stamp="$DEST/.installed-$(sha256sum "$REQUIREMENTS" | cut -c1-16)"
if [[ -f "$stamp" ]]; then
    exit 0
fi

mkdir -p "$CACHE"
"$VENV/bin/python" -m pip download --quiet --no-deps --require-hashes --dest "$CACHE" -r "$REQUIREMENTS"
spec="$(grep -Eo '^[A-Za-z0-9_.-]+==[^ ]+' "$REQUIREMENTS")"
wheel="$CACHE/${spec%%==*}-${spec##*==}-py3-none-any.whl"

"$VENV/bin/python" - "$wheel" "$DEST" "${COLLECTIONS[@]}" <<'PY'
import shutil, sys, zipfile
from pathlib import Path

wheel, dest, wanted = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
with zipfile.ZipFile(wheel) as archive:
    for collection in wanted:
        prefix = "ansible_collections/{0}/".format(collection)
        members = [m for m in archive.namelist() if m.startswith(prefix)]
        if not members:
            sys.exit("{0} holds no {1}".format(wheel, prefix))
        target = dest / "ansible_collections" / collection
        shutil.rmtree(target, ignore_errors=True)
        for member in members:
            archive.extract(member, dest)
        print("installed {0} into {1}".format(collection.replace("/", "."), dest))
PY
rm -f "$DEST"/.installed-*
touch "$stamp"
