#!/usr/bin/env bash
# moto (a local AWS API) for the end-to-end tests: `source scripts/moto.sh; moto_install` creates
# .venv at the repo root with moto[server] 5.x, and prints nothing when it is already there.
# `moto_server_path` prints the absolute path of the moto_server script for TRIPLINE_MOTO_SERVER.
# Run directly (`scripts/moto.sh`) it installs and prints that path.

MOTO_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOTO_VENV="${MOTO_VENV:-$MOTO_REPO_ROOT/.venv}"

moto_server_path() {
    echo "$MOTO_VENV/bin/moto_server"
}

moto_install() {
    if [ -x "$MOTO_VENV/bin/moto_server" ] && "$MOTO_VENV/bin/python" -c 'import moto.server' 2>/dev/null; then
        return 0
    fi
    echo "installing moto[server] into $MOTO_VENV ..." >&2
    [ -x "$MOTO_VENV/bin/python" ] || python3 -m venv "$MOTO_VENV" || return 1
    "$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' >&2 || return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    moto_install
    moto_server_path
fi
