# Sourced by scripts/test: the architecture test. scripts/suite/arch_graph.py reads every
# `crate::…` path of engine/src, builds the graph of top-level modules and checks it against the
# dependency order in docs/ARCHITECTURE.md (`## Dependency order`): no cycle, no edge to a module
# of the same or a higher layer, no module missing from the order. Before that it shows, on temp
# copies of the tree, that it does fail on what it must catch: a planted cycle, an import against
# the order that closes no cycle, the grouped and `super::super::` forms of a path, and a module
# the doc does not list; and that `#[cfg(test)]` code is exempt (tests may use any layer).

arch_expect_failure() {
    # $1: what is planted; $2: text the output must hold; the tree is in $arch_tmp.
    local what=$1 want=$2 out
    if out=$(python3 scripts/suite/arch_graph.py "$arch_tmp/src" "$arch_tmp/ARCHITECTURE.md" 2>&1); then
        echo "FAILED: planted $what, and the check passed"
        arch_failed=$((arch_failed + 1))
    elif ! grep -qF -- "$want" <<<"$out"; then
        echo "FAILED: planted $what; the output does not name $want:"
        sed 's/^/    /' <<<"$out"
        arch_failed=$((arch_failed + 1))
    else
        echo "ok: planted $what is caught:"
        head -n 8 <<<"$out" | sed "s/^/    /"
        arch_passed=$((arch_passed + 1))
    fi
}

arch_fresh_copy() {
    rm -rf "$arch_tmp"
    mkdir -p "$arch_tmp"
    cp -r engine/src "$arch_tmp/src"
    cp docs/ARCHITECTURE.md "$arch_tmp/ARCHITECTURE.md"
}

suite_arch() {
    local arch_passed=0 arch_failed=0 out
    local arch_tmp
    arch_tmp=$(mktemp -d)

    # Self-tests on copies of the tree.
    arch_fresh_copy
    printf '\nfn planted() { let _ = crate::Tripline::builder(); }\n' >>"$arch_tmp/src/alert/state.rs"
    arch_expect_failure "a cycle (alert -> engine, via lib.rs's re-export of Tripline)" \
        "src/alert/state.rs:$(wc -l <"$arch_tmp/src/alert/state.rs")"
    arch_expect_failure "a cycle (alert -> engine)" "    alert -> engine  $arch_tmp/src/alert/state.rs"

    arch_fresh_copy
    printf '\n#[allow(unused_imports)]\nuse crate::backtest::BacktestRange;\n' >>"$arch_tmp/src/ruletest/mod.rs"
    arch_expect_failure "an edge to its own layer without a cycle (ruletest -> backtest)" \
        "\`ruletest\` (layer 11) uses \`backtest\` (its own layer, 11)"

    arch_fresh_copy
    printf '\n#[allow(unused_imports)]\nuse crate::config::RawConfig;\n' >>"$arch_tmp/src/store/mod.rs"
    arch_expect_failure "an edge to a higher layer (store -> config)" \
        "\`store\` (layer 8) uses \`config\` (a higher layer, 9)"

    arch_fresh_copy
    printf '\n#[cfg(test)]\nmod planted {\n    #[allow(unused_imports)]\n    use crate::engine::Tripline;\n}\n' >>"$arch_tmp/src/alert/state.rs"
    if out=$(python3 scripts/suite/arch_graph.py "$arch_tmp/src" "$arch_tmp/ARCHITECTURE.md" 2>&1); then
        echo "ok: test code (#[cfg(test)] mod) may use any layer: $(tail -n 1 <<<"$out")"
        arch_passed=$((arch_passed + 1))
    else
        echo "FAILED: a #[cfg(test)] module's import counted as the library's:"
        sed 's/^/    /' <<<"$out"
        arch_failed=$((arch_failed + 1))
    fi

    arch_fresh_copy
    printf '\n#[allow(unused_imports)]\nuse crate::{\n    error::Error,\n    data::Series,\n};\n' >>"$arch_tmp/src/suggest.rs"
    arch_expect_failure "a grouped use against the order (suggest -> data)" "src/suggest.rs:"

    arch_fresh_copy
    printf '\n#[allow(unused_imports)]\nuse super::super::store::SqliteStore;\n' >>"$arch_tmp/src/pipeline/route.rs"
    arch_expect_failure "a super::super:: path against the order (pipeline -> store)" "src/pipeline/route.rs:"

    arch_fresh_copy
    printf '//! planted\n' >"$arch_tmp/src/planted.rs"
    arch_expect_failure "a module missing from the documented order" "module \`planted\` is not in the dependency order"

    rm -rf "$arch_tmp"

    # The real tree.
    if out=$(python3 scripts/suite/arch_graph.py engine/src docs/ARCHITECTURE.md 2>&1); then
        echo "ok: engine/src follows the dependency order of docs/ARCHITECTURE.md: $(tail -n 1 <<<"$out")"
        arch_passed=$((arch_passed + 1))
    else
        echo "FAILED: engine/src against docs/ARCHITECTURE.md:"
        echo "$out"
        arch_failed=$((arch_failed + 1))
    fi
    echo "$arch_passed passed, $arch_failed failed"
    [ "$arch_failed" -eq 0 ]
}
