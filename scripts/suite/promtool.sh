# Differential test of `for` / `keep_firing_for` against real Prometheus: 300 seeded random
# timelines through `promtool test rules` and `tripline test` (scripts/suite/promtool_diff.py).
# Costs about 40 s of CPU (most of it promtool starting once per timeline file).
suite_promtool() {
  command -v promtool >/dev/null 2>&1 || apt_install prometheus
  python3 scripts/suite/promtool_diff.py --count 300
}
