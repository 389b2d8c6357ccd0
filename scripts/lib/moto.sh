# Sourced by scripts/test: installs moto into .venv when missing (quiet otherwise) and points the
# AWS end-to-end tests at it.
. "$(dirname "${BASH_SOURCE[0]}")/../moto.sh"
moto_install
export TRIPLINE_MOTO_SERVER="$(moto_server_path)"
