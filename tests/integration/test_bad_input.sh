# Every file in scenarios/bad/ holds one mistake. `faultline run FILE` must exit 2 and say, on
# stderr, "faultline: FILE:LINE: <what is wrong>", where LINE is the line tagged "-- @error"
# and the message contains the text after "-- expect: " on the file's first line.
. "$(dirname "$0")/lib.sh"
it_init

# check_bad FILE [SHOWN]: runs FILE (named SHOWN on the command line, default FILE).
check_bad() {
    src=$1
    shown=${2:-$1}
    line=$(grep -n -- '-- @error$' "$src" | cut -d: -f1)
    want=$(sed -n '1s/^-- expect: //p' "$src")
    if [ -z "$line" ] || [ -z "$want" ]; then
        fail "$src lacks its '-- expect: ' first line or its '-- @error' tag"
        return
    fi
    expect_exit 2 "$FL" run "$shown"
    prefix="faultline: $shown:$line: "
    first=$(head -n 1 "$ERR")
    case "$first" in
    "$prefix"*) ok "$shown: first stderr line starts with '$prefix'" ;;
    *) fail "$shown: first stderr line should start with '$prefix', got '$first'" ;;
    esac
    case "$first" in
    *"$want"*) ok "$shown: names the mistake" ;;
    *) fail "$shown: stderr should say '$want', got '$first'" ;;
    esac
}

n=0
for f in bad/*.lua; do
    check_bad "$f"
    n=$((n + 1))
done
[ "$n" -ge 15 ] && ok "$n bad files checked" || fail "only $n files in scenarios/bad"

# A mistake in one file stops the whole run before anything starts, even with good files.
expect_exit 2 env IT_TOUCH="$FL_TMP/touched" "$FL" run cli/touch.lua bad/unknown_topology_key.lua
[ ! -e "$FL_TMP/touched" ] && ok "no scenario ran" || fail "a scenario ran despite a bad file"
expect_grep '^faultline: bad/unknown_topology_key.lua:2: ' "$ERR"
# Every bad file is reported, not just the first.
expect_exit 2 "$FL" run bad/no_cmd.lua bad/syntax_error.lua bad/unknown_need.lua
expect_eq "load errors reported" "$(grep -c '^faultline: bad/' "$ERR")" 3

# Long paths are named in full: no "..." abbreviation of the file name.
deep="$FL_TMP/a-folder-with-a-long-name/another-folder-with-a-long-name/and-one-more"
mkdir -p "$deep/bad"
for f in unknown_topology_key syntax_error typo_method; do
    cp "bad/$f.lua" "$deep/bad/$f.lua"
    check_bad "bad/$f.lua" "$deep/bad/$f.lua"
done

it_done
