# Sourced by scripts/test: the Node bindings (bindings/node, napi-rs) built in debug, their
# node:test suite (every API call, errors with positions, JS receivers, the event loop free
# during a cycle, examples/node-worker), `tsc --noEmit` of the TypeScript example against the
# generated index.d.ts, and a check that the committed index.d.ts is what the build generates.
# Costs about 40 s after the workspace build (the addon reuses its artifacts in target/).

suite_node() {
    local passed=0 failed=0 out p f
    # The README's commands, as they are: `cd bindings/node && npm install && npm test` (npm test's
    # pretest builds the addon with `napi build`, which reuses the workspace build's artifacts:
    # see the feature pins in bindings/core/Cargo.toml and bindings/node/Cargo.toml).
    echo "cd bindings/node && npm install && npm test"
    (cd bindings/node && npm install --no-audit --no-fund --silent >&2) || return 1

    out=$(cd bindings/node && npm test 2>&1)
    echo "$out" | grep -E '^(not ok|# (tests|pass|fail))' | tail -n 20
    p=$(echo "$out" | awk '/^# pass / {print $3}' | tail -n 1)
    f=$(echo "$out" | awk '/^# fail / {print $3}' | tail -n 1)
    if [ -z "$p" ]; then
        echo "$out" | tail -n 30
        failed=$((failed + 1))
    fi
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))

    echo "tsc --noEmit examples/node-worker against index.d.ts"
    if (cd bindings/node && node_modules/.bin/tsc --noEmit -p ../../examples/node-worker); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
    echo "tsc rejects misuse of index.d.ts (test/typing/misuse.ts)"
    if out=$(cd bindings/node && node_modules/.bin/tsc -p test/typing 2>&1); then
        echo "tsc accepted misuse.ts: index.d.ts does not type the API"
        failed=$((failed + 1))
    elif [ "$(echo "$out" | grep -c 'error TS')" -ge 3 ]; then
        passed=$((passed + 1))
    else
        echo "$out"
        failed=$((failed + 1))
    fi
    echo "the committed index.d.ts is the generated one"
    if git diff --quiet -- bindings/node/index.d.ts 2>/dev/null; then
        passed=$((passed + 1))
    else
        git diff --stat -- bindings/node/index.d.ts
        failed=$((failed + 1))
    fi

    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
