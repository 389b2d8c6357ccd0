# Sourced by scripts/test: the Python bindings (bindings/python) built in debug with maturin into
# the suite's venv, their pytest suite (every API call, errors with positions, a Python receiver,
# the GIL released during a cycle, examples/python-lambda-job against moto's SNS), and
# `mypy --strict` of the examples against the package's stubs. Costs about a minute on top of the
# Rust build (maturin reuses target/).

suite_python() {
    local root venv py passed=0 failed=0 out line p f
    root=$(pwd)
    venv="${TRIPLINE_PY_VENV:-$root/.venv}"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return 1
    py="$venv/bin/python"
    if ! "$py" -c 'import maturin, pytest, mypy, numpy, boto3' 2>/dev/null; then
        echo "installing maturin, pytest, mypy, numpy, boto3 into $venv ..." >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check \
            'maturin>=1.5,<2' pytest mypy numpy boto3 >&2 || return 1
    fi
    # `maturin develop` needs VIRTUAL_ENV to know where to install.
    (cd bindings/python && VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop --quiet 2>&1 | tail -n 2) || return 1

    out=$(cd bindings/python && "$py" -m pytest -q -p no:cacheprovider tests 2>&1)
    echo "$out" | tail -n 30
    line=$(echo "$out" | grep -E '^(=+ )?[0-9]+ (passed|failed)|^(=+ )?[0-9]+ .* in [0-9.]+s' | tail -n 1)
    p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
    f=$(echo "$line" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s += $1} END {print s + 0}')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    [ -n "$line" ] || failed=$((failed + 1))

    echo "mypy --strict examples/python-lambda-job against the stubs"
    if "$venv/bin/mypy" --strict --no-incremental --cache-dir=/dev/null examples/python-lambda-job/handler.py; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
    echo "mypy --strict rejects misuse of the stubs (tests/typing/misuse.py)"
    if out=$("$venv/bin/mypy" --strict --no-incremental --cache-dir=/dev/null bindings/python/tests/typing/misuse.py 2>&1); then
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
