#!/usr/bin/env bash
# Lint gate: ansible-lint (production profile, offline) and antsibull-changelog lint.
#
# ansible-lint resolves `pkgcache.fleet.*` references through ANSIBLE_COLLECTIONS_PATH; the
# Makefile points it at .build/link (`make link`), and this script does the same when run alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$ROOT/.build/link}"

if [[ ! -d "$ANSIBLE_COLLECTIONS_PATH/ansible_collections/pkgcache/fleet" ]]; then
    echo "lint: pkgcache.fleet is not resolvable under $ANSIBLE_COLLECTIONS_PATH (run: make link)" >&2
    exit 1
fi

cd "$ROOT"
status=0
ansible-lint --offline --profile production --nocolor || status=1
antsibull-changelog lint || status=1
exit "$status"
