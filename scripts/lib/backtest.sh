# Real parts for the backtest tests (issue #16), from Debian's packages: chromium (the HTML report
# opened headless, screenshot and DOM) and victoria-metrics (its vmalert, whose `-replay` the
# Prometheus-source backtest is compared with). Sourced by scripts/test;
# `install_test_deps_backtest` installs only what is missing and exports
#   TRIPLINE_CHROMIUM=/usr/bin/chromium
#   TRIPLINE_VMALERT=/usr/bin/vmalert

install_test_deps_backtest() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/vmalert ] || missing+=(victoria-metrics)
  apt_install "${missing[@]}"
  TRIPLINE_CHROMIUM=/usr/bin/chromium
  TRIPLINE_VMALERT=/usr/bin/vmalert
  export TRIPLINE_CHROMIUM TRIPLINE_VMALERT
  echo "chromium: $TRIPLINE_CHROMIUM; vmalert: $TRIPLINE_VMALERT"
}
