# Shared by the scripts/lib installers, the suite stages and scripts/bench: installs Debian
# packages quietly (sudo when not root). Package scripts may try to start services; in a
# container without an init system they cannot, which is fine: the tests start their own.
apt_install() {
  [ $# -gt 0 ] || return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing $*"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "$@" >/dev/null
}
