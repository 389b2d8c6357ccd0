# Sourced by scripts/test: the two commands at the top of README.md, read from its first ```sh
# block and run exactly as written, so the README cannot drift from what works. The suite's own
# command (`scripts/test`, which is what is running this stage) is not run again inside itself:
# the stage checks instead that it is the command `.ci/run` executes. The demo runs with no AWS
# credentials or region in its environment, in a fresh state directory, and must show alerts
# firing on the console.

readme_commands() {
    # The first fenced ```sh block of README.md, one command per line, comments stripped.
    awk '/^```sh$/ && !seen { inside = 1; seen = 1; next } inside && /^```/ { exit } inside { print }' README.md |
        sed -E 's/[[:space:]]+#.*$//' | sed '/^[[:space:]]*$/d'
}

suite_readme() {
    local passed=0 failed=0 cmd out n=0
    while IFS= read -r cmd; do
        n=$((n + 1))
        if [ "$cmd" = "scripts/test" ]; then
            if grep -qx 'exec scripts/test' .ci/run && [ -x scripts/test ]; then
                echo "ok: \`$cmd\` is the suite running now, and what .ci/run executes"
                passed=$((passed + 1))
            else
                echo "FAILED: \`$cmd\` is not what .ci/run executes"
                failed=$((failed + 1))
            fi
            continue
        fi
        rm -rf tripline-demo
        if out=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
            -u AWS_REGION -u AWS_DEFAULT_REGION -u AWS_PROFILE AWS_EC2_METADATA_DISABLED=true \
            bash -c "$cmd" 2>&1) && echo "$out" | grep -q 'FIRING'; then
            echo "ok: \`$cmd\`"
            echo "$out" | grep 'FIRING' | head -n 3 | sed 's/^/    /'
            passed=$((passed + 1))
        else
            echo "FAILED: \`$cmd\`"
            echo "$out" | tail -n 20 | sed 's/^/    /'
            failed=$((failed + 1))
        fi
        rm -rf tripline-demo
    done < <(readme_commands)
    if [ "$n" -ne 2 ]; then
        echo "FAILED: README.md's first sh block holds $n commands, not the two it promises"
        failed=$((failed + 1))
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
