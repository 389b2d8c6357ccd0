# Real servers for the source tests: Prometheus, PostgreSQL and Redis from Debian's packages
# (and openssl, for the PostgreSQL TLS test's certificates).
# Sourced by scripts/test; `install_test_deps_services` installs only what is missing (quietly)
# and exports where the binaries are:
#   TRIPLINE_PROMETHEUS=/usr/bin/prometheus
#   TRIPLINE_PG_BIN=/usr/lib/postgresql/<version>/bin   (initdb, pg_ctl)
#   TRIPLINE_REDIS_SERVER=/usr/bin/redis-server
#   TRIPLINE_AMTOOL=/usr/bin/amtool   (prometheus-alertmanager: the Alertmanager API v2 tests)
# Debian does not start any of them here: the tests start their own on loopback and stop them.

install_test_deps_services() {
  local missing=()
  command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || missing+=(prometheus)
  command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
  command -v amtool >/dev/null 2>&1 || [ -x /usr/bin/amtool ] || missing+=(prometheus-alertmanager)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # test certificates for TLS
  apt_install "${missing[@]}"
  TRIPLINE_PROMETHEUS=$(command -v prometheus || echo /usr/bin/prometheus)
  TRIPLINE_REDIS_SERVER=$(command -v redis-server || echo /usr/bin/redis-server)
  # The newest installed PostgreSQL major version.
  TRIPLINE_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  TRIPLINE_AMTOOL=$(command -v amtool || echo /usr/bin/amtool)
  export TRIPLINE_PROMETHEUS TRIPLINE_PG_BIN TRIPLINE_REDIS_SERVER TRIPLINE_AMTOOL
  echo "prometheus: $TRIPLINE_PROMETHEUS; postgresql: $TRIPLINE_PG_BIN; redis: $TRIPLINE_REDIS_SERVER; amtool: $TRIPLINE_AMTOOL"
}
