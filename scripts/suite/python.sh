# Sourced by scripts/test: the Python bindings (bindings/python). First the README's promise: in a
# fresh venv, `pip install ./bindings/python` (maturin fetched from PyPI by pip's build isolation)
# and bindings/python/tests/three_lines.py runs a cycle whose alert fires. That build is the only
# one: it uses the dev profile and the workspace's target dir, and bindings/core's feature pins make
# it reuse the artifacts `cargo build --workspace` just made (about 25 s instead of a cold build),
# and the pytest suite (every API call, errors with positions, a Python receiver, the GIL released
# during a cycle, examples/python-lambda-job against moto's SNS) and `mypy --strict` of the
# examples run against that same installed package, from the tools' venv (.venv).
suite_python() {
    local root venv py fresh site passed=0 failed=0 out line p f
    root=$(pwd)
    venv="${TRIPLINE_PY_VENV:-$root/.venv}"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return 1
    py="$venv/bin/python"
    if ! "$py" -c 'import pytest, mypy, numpy, boto3' 2>/dev/null; then
        echo "installing pytest, mypy, numpy, boto3 into $venv ..." >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check pytest mypy numpy boto3 >&2 || return 1
    fi

    echo "fresh venv: pip install ./bindings/python, then tests/three_lines.py fires an alert"
    # A stable path: maturin hands pyo3's build script the interpreter's path, so a new one each
    # run would rebuild pyo3.
    fresh="${CARGO_TARGET_DIR:-$root/target}/py-fresh"
    python3 -m venv --clear "$fresh" || return 1
    if ! CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}" MATURIN_PEP517_ARGS="--profile dev" \
        "$fresh/bin/pip" install --quiet --disable-pip-version-check ./bindings/python; then
        echo "pip install ./bindings/python failed"
        echo "$passed passed, $((failed + 1)) failed"
        return 1
    fi
    if out=$(cd / && "$fresh/bin/python" "$root/bindings/python/tests/three_lines.py" 2>&1) \
        && echo "$out" | grep -q '<Alert firing warning backlog'; then
        echo "$out"
        passed=$((passed + 1))
    else
        echo "$out"
        failed=$((failed + 1))
    fi
    # The tests import that package (PYTHONPATH before .venv's own site-packages, where an older
    # `maturin develop` may have left one).
    site=$("$fresh/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

    out=$(cd bindings/python && PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" "$py" -m pytest -q -p no:cacheprovider tests 2>&1)
    echo "$out" | tail -n 30
    line=$(echo "$out" | grep -E '^(=+ )?[0-9]+ (passed|failed)|^(=+ )?[0-9]+ .* in [0-9.]+s' | tail -n 1)
    p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
    f=$(echo "$line" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s += $1} END {print s + 0}')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    [ -n "$line" ] || failed=$((failed + 1))

    echo "mypy --strict examples/python-lambda-job against the stubs"
    if "$venv/bin/mypy" --python-executable "$fresh/bin/python" --strict --no-incremental --cache-dir=/dev/null examples/python-lambda-job/handler.py; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
    echo "mypy --strict rejects misuse of the stubs (tests/typing/misuse.py)"
    if out=$("$venv/bin/mypy" --python-executable "$fresh/bin/python" --strict --no-incremental --cache-dir=/dev/null bindings/python/tests/typing/misuse.py 2>&1); then
        echo "mypy accepted misuse.py: the stubs do not type the API"
        failed=$((failed + 1))
    elif [ "$(echo "$out" | grep -c ': error:')" -ge 3 ]; then
        passed=$((passed + 1))
    else
        echo "$out"
        failed=$((failed + 1))
    fi

    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
