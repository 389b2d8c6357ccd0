# Sourced by scripts/test: the bounded mutation fuzz run over Tripline's input loaders (config,
# rules, rule-test files, fixture files, matchers, durations and cron, the ingest and silence API
# bodies; fuzz/main.rs). TRIPLINE_FUZZ_SECONDS (default 120) is split across the eight targets;
# the generator is seeded (TRIPLINE_FUZZ_SEED, default 17), so a run is repeatable. A panicking
# or hanging input is written to fuzz/regressions/<target>/, which `cargo test` replays from then
# on. Costs the budget plus about a minute to build the fuzz test binary (the library is built).
# Counts: a target with no panic passes. `--workspace`, not `-p tripline-tests`: cargo resolves
# features per selected package, and tripline-tests alone gets fewer than the workspace build had,
# so `-p` recompiled the engine and much of the AWS SDK (75 s on 2 cores) instead of reusing them.

suite_fuzz() {
    TRIPLINE_FUZZ_SECONDS="${TRIPLINE_FUZZ_SECONDS:-120}" \
        cargo test --locked -q --workspace --test fuzz -- --ignored --nocapture mutate 2>&1 |
        grep -vE '^(running [0-9]+ tests?|test result:.*|\s*|\.+)$'
    return "${PIPESTATUS[0]}"
}
