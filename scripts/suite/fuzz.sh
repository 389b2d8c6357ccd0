# Sourced by scripts/test: the bounded mutation fuzz run over Tripline's input loaders (config,
# rules, rule-test files, fixture files, matchers, durations and cron, the ingest and silence API
# bodies; fuzz/main.rs). TRIPLINE_FUZZ_SECONDS (default 120) is split across the eight targets;
# the generator is seeded (TRIPLINE_FUZZ_SEED, default 17), so a run is repeatable. A panicking
# or hanging input is written to fuzz/regressions/<target>/, which `cargo test` replays from then
# on. Costs the budget plus about a minute to build the fuzz test binary (the library is built).
# Counts: a target with no panic passes.

suite_fuzz() {
    TRIPLINE_FUZZ_SECONDS="${TRIPLINE_FUZZ_SECONDS:-120}" \
        cargo test --locked -q -p tripline-tests --test fuzz -- --ignored --nocapture mutate 2>&1 |
        grep -vE '^(running [0-9]+ tests?|test result:.*|\s*|\.+)$'
    return "${PIPESTATUS[0]}"
}
