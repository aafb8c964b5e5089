# The collector (harness/collector.c): collector/payloads.lua posts hand-built OTLP payloads
# (protobuf, gzip, JSON, partial success, bad ones → 400/415) and reads them back through
# t:traces; collector/shop.lua runs users + gateway exporting for real and checks the trees
# gateway SERVER -> CLIENT -> users SERVER; collector/usage.lua: t:traces usage errors at the
# user's line. Nothing may be left running.
IT_LIMIT=${IT_LIMIT:-90}
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)
T0=$(now_ms)

suite collector/payloads.lua
expect_grep '\[note\] collector: 400 from 127\.[0-9.]+:[0-9]+: ' "$S"
expect_grep '\[note\] collector: rejected 1 of 2 spans from 127\.[0-9.:]+: invalid trace id' "$S"
expect_no_marker "$MARK" 3 "after collector/payloads.lua"

suite collector/shop.lua
expect_no_marker "$MARK" 3 "after collector/shop.lua"

usage_checks collector/usage.lua

echo "  (test_collector.sh took $(($(now_ms) - T0))ms)"
it_done
