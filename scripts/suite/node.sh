# Sourced by scripts/test: the Node bindings (bindings/node, napi-rs) built in debug, their
# node:test suite (every API call, errors with positions, JS receivers, the event loop free
# during a cycle, examples/node-worker), `tsc --noEmit` of the TypeScript example against the
# generated index.d.ts, and a check that the committed index.d.ts is what the build generates.
# Costs under a minute on top of the Rust build (the addon shares target/).

suite_node() {
    local passed=0 failed=0 out p f
    (
        cd bindings/node || exit 1
        if [ ! -x node_modules/.bin/napi ] || [ ! -x node_modules/.bin/tsc ]; then
            npm install --no-audit --no-fund --silent >&2 || exit 1
        fi
    ) || return 1

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
