# faultline's command line: commands, options, usage errors (exit 2, one line on stderr),
# the seed, --filter, --quiet, --fail-fast and the exit codes 0 / 1 / 2.
. "$(dirname "$0")/lib.sh"
it_init

# ---- commands
expect_exit 0 "$FL" version
expect_grep '^faultline [0-9]+\.[0-9]+\.[0-9]+$' "$OUT"
expect_exit 0 "$FL" --help
expect_grep '^usage: faultline run' "$OUT"
expect_exit 0 "$FL" run --help
expect_grep '^usage: faultline run' "$OUT"
expect_exit 2 "$FL"
expect_grep '^usage: ' "$ERR"
expect_exit 2 "$FL" frobnicate
expect_grep "^faultline: unknown command 'frobnicate'" "$ERR"

# ---- usage errors: exit 2, "faultline: ..." on stderr, nothing run
expect_exit 2 "$FL" run --bogus cli/touch.lua
expect_grep '^faultline: unknown option --bogus' "$ERR"
expect_exit 2 "$FL" run --seed abc cli/touch.lua
expect_grep "^faultline: --seed .*'abc'" "$ERR"
expect_exit 2 "$FL" run --seed -1 cli/touch.lua
expect_grep "^faultline: --seed .*'-1'" "$ERR"
expect_exit 2 "$FL" run --timeout 5x cli/touch.lua
expect_grep "^faultline: --timeout .*'5x'" "$ERR"
expect_exit 2 "$FL" run --timeout 0 cli/touch.lua
expect_grep "^faultline: --timeout .*'0'" "$ERR"
# an option without its value is named as such, not as an unknown option
expect_exit 2 "$FL" run --seed
expect_grep '^faultline: option --seed needs a value' "$ERR"
expect_exit 2 "$FL" run --timeout
expect_grep '^faultline: option --timeout needs a value' "$ERR"
expect_exit 2 "$FL" run
expect_grep '^faultline: run needs at least one PATH' "$ERR"
expect_exit 2 "$FL" run "$FL_TMP/no-such-dir/missing.lua"
expect_grep "^faultline: $FL_TMP/no-such-dir/missing.lua: " "$ERR"
mkdir -p "$FL_TMP/empty"
expect_exit 2 "$FL" run "$FL_TMP/empty"
expect_grep '^faultline: no scenario files' "$ERR"

# A report that cannot be written stops the run before any scenario runs.
touched="$FL_TMP/touched"
t0=$(now_ms)
expect_exit 2 env IT_TOUCH="$touched" "$FL" run --junit /nonexistent/dir/x.xml cli/touch.lua
t1=$(now_ms)
expect_grep '^faultline: .*/nonexistent/dir/x\.xml' "$ERR"
expect_no_grep 'touches a file' "$OUT"
[ ! -e "$touched" ] && ok "no scenario ran" || fail "the scenario ran despite the bad --junit path"
[ $((t1 - t0)) -lt 2000 ] && ok "bad --junit rejected in $((t1 - t0))ms" ||
    fail "bad --junit took $((t1 - t0))ms to be rejected"
# ...and so does a report path that is a folder
rm -f "$touched"
expect_exit 2 env IT_TOUCH="$touched" "$FL" run --junit "$FL_TMP/empty" cli/touch.lua
expect_grep "^faultline: .*$FL_TMP/empty" "$ERR"
expect_no_grep 'touches a file' "$OUT"
[ ! -e "$touched" ] && ok "no scenario ran" ||
    fail "the scenario ran although --junit names a folder"

# A malformed --filter pattern is a usage error, not "nothing matches".
expect_exit 2 "$FL" run --filter '[a' cli/filter.lua
expect_grep '^faultline: .*(pattern|filter)' "$ERR"

# ---- exit codes
rm -f "$touched"
expect_exit 0 env IT_TOUCH="$touched" "$FL" run cli/touch.lua
[ -e "$touched" ] && ok "the scenario ran" || fail "the scenario did not run"
expect_grep '^✓ cli/touch.lua: touches a file \(' "$OUT"
expect_summary "1 passed, 0 failed, 0 errors, 0 skipped"
expect_exit 1 "$FL" run cli/suite.lua
expect_summary "3 passed, 1 failed, 0 errors, 0 skipped"
expect_exit 2 "$FL" run cli/usage.lua
expect_grep "^faultline: cli/usage.lua:4: t has no method or field 'crsh' \(did you mean 'crash'\?\)" "$ERR"
expect_summary "1 passed, 0 failed, 1 errors, 0 skipped"

# ---- the seed: printed at the start and in the summary, the same number
expect_exit 0 "$FL" run cli/filter.lua
first=$(head -n 1 "$OUT")
seed=$(echo "$first" | sed -n 's/.*seed \([0-9][0-9]*\).*/\1/p')
[ -n "$seed" ] && ok "seed $seed printed first" || fail "no seed on the first line: '$first'"
expect_fgrep "(seed $seed)" "$OUT"
expect_exit 0 "$FL" run --quiet cli/filter.lua
expect_grep '^faultline: seed [0-9]+$' "$OUT"

# --seed N: printed, and every random sequence (t:random, math.random in the scenario and at
# load time) is the same in two runs; another seed gives other numbers.
randoms() { # FILE: the "rnd ..." notes without their timestamps
    sed -n 's/.*\[note\] \(rnd .*\) (cli\/random.lua:[0-9]*)$/\1/p' "$1"
}
expect_exit 0 "$FL" run --seed 42 --verbose cli/random.lua
expect_grep '^faultline .*: seed 42,' "$OUT"
expect_fgrep "(seed 42)" "$OUT"
randoms "$OUT" >"$FL_TMP/rnd1"
expect_exit 0 "$FL" run --seed 42 --verbose cli/random.lua
randoms "$OUT" >"$FL_TMP/rnd2"
expect_exit 0 "$FL" run --seed 43 --verbose cli/random.lua
randoms "$OUT" >"$FL_TMP/rnd3"
expect_eq "number of random notes" "$(wc -l <"$FL_TMP/rnd1" | tr -d ' ')" 5
if cmp -s "$FL_TMP/rnd1" "$FL_TMP/rnd2"; then
    ok "--seed 42 twice: identical random sequences"
else
    fail "--seed 42 twice gave different random sequences:"
    diff "$FL_TMP/rnd1" "$FL_TMP/rnd2" | sed 's/^/  | /'
fi
expect_grep '\[note\] seed 43 \(' "$OUT" # t.seed
# a scenario's sequence does not depend on which other scenarios run
expect_exit 0 "$FL" run --seed 42 --verbose --filter 'its own sequence' cli/random.lua
expect_summary "1 passed, 0 failed, 0 errors, 0 skipped"
expect_eq "'rnd other' run alone" "$(randoms "$OUT")" "$(grep -F "rnd other" "$FL_TMP/rnd1")"
for what in "rnd load" "rnd t:random " "rnd math.random" "rnd other"; do
    a=$(grep -F "$what" "$FL_TMP/rnd1")
    b=$(grep -F "$what" "$FL_TMP/rnd3")
    expect_ne "'$what' with seeds 42 and 43" "$a" "$b"
done

# ---- --filter: a Lua pattern over "file: name"
expect_exit 0 "$FL" run --filter 'alpha' cli/filter.lua
expect_summary "2 passed, 0 failed, 0 errors, 0 skipped"
expect_fgrep 'cli/filter.lua: alpha one' "$OUT"
expect_fgrep 'cli/filter.lua: alpha two' "$OUT"
expect_no_fgrep 'beta' "$OUT"
expect_exit 0 "$FL" run --filter '^cli/filter%.lua: %a+ %d$' cli/filter.lua cli/touch.lua
expect_summary "1 passed, 0 failed, 0 errors, 0 skipped"
expect_fgrep 'cli/filter.lua: beta 3' "$OUT"
expect_exit 0 env IT_TOUCH="$touched" "$FL" run --filter 'touch%.lua' cli/filter.lua cli/touch.lua
expect_summary "1 passed, 0 failed, 0 errors, 0 skipped"
expect_fgrep 'cli/touch.lua: touches a file' "$OUT"
expect_exit 0 "$FL" run --filter 'no such scenario' cli/filter.lua
expect_grep '^faultline: no scenario matches' "$ERR"
expect_summary "0 passed, 0 failed, 0 errors, 0 skipped"

# ---- --quiet: failures and the summary only
expect_exit 1 "$FL" run --quiet cli/suite.lua
expect_no_grep '✓' "$OUT"
expect_no_fgrep 'first passes' "$OUT"
expect_grep '^✗ cli/suite.lua: second fails \(' "$OUT"
expect_fgrep 'second is meant to fail' "$OUT"
expect_summary "3 passed, 1 failed, 0 errors, 0 skipped"
expect_eq "lines before the failure" "$(sed -n '1p' "$OUT" | sed 's/[0-9]*$/N/')" "faultline: seed N"

# ---- --fail-fast: stops after the first failure, the rest are reported as skipped
mkdir -p "$FL_TMP/ran"
expect_exit 1 env IT_TOUCH_DIR="$FL_TMP/ran" "$FL" run --fail-fast --junit "$FL_TMP/ff.xml" cli/suite.lua
expect_summary "1 passed, 1 failed, 0 errors, 2 skipped"
expect_eq "scenarios that ran" "$(ls "$FL_TMP/ran" | tr '\n' ' ')" "1 2 "
expect_grep '<testcase [^>]*name="third passes"' "$FL_TMP/ff.xml"
expect_eq "skipped testcases in the JUnit report" "$(grep -c '<skipped' "$FL_TMP/ff.xml")" 2
# --keep-going (the default) runs them all
rm -f "$FL_TMP/ran"/*
expect_exit 1 env IT_TOUCH_DIR="$FL_TMP/ran" "$FL" run --fail-fast --keep-going cli/suite.lua
expect_eq "scenarios that ran" "$(ls "$FL_TMP/ran" | tr '\n' ' ')" "1 2 3 4 "

it_done
