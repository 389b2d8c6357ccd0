# Sourced by scripts/test: the delivery tests that need real time (issue #17). The chaos test —
# `tripline run` with 300 alerts, a receiver answering 200/429/500/hang/drop at random and 12
# random SIGKILLs and restarts, then 0 lost and the duplicates counted — and Slack answering 429
# `Retry-After: 1` for 60 s through the daemon. Both run side by side: about 90 s on 2 cores
# (the e2e binary is already built by the Rust stage; `--workspace` rather than `-p tripline-tests`
# keeps the workspace build's features, so that binary is reused instead of rebuilt).

suite_chaos() {
    local out passed failed
    out=$(cargo test -q --workspace --test e2e -- --ignored --nocapture chaos_ realtime_ 2>&1)
    echo "$out" | grep -oE '(chaos|realtime)(:| seed) .*|panicked.*|FAILED.*' | head -n 40
    passed=$(echo "$out" | grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed' | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' | tail -n 1)
    failed=$(echo "$out" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' | tail -n 1)
    [ -n "$passed" ] || { passed=0; failed=$((${failed:-0} + 1)); }
    echo "${passed} passed, ${failed:-0} failed"
    [ "${failed:-0}" -eq 0 ]
}
