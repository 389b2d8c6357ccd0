# Sourced by scripts/test, which runs every `install_test_deps_*` function: installs moto into
# .venv when missing (quiet otherwise) and points the AWS end-to-end tests at it.
. "$(dirname "${BASH_SOURCE[0]}")/../moto.sh"

install_test_deps_moto() {
    moto_install
    TRIPLINE_MOTO_SERVER="$(moto_server_path)"
    export TRIPLINE_MOTO_SERVER
}
