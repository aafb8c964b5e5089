# The HTML report of a real run, opened from disk by Debian's headless Chromium: the DOM it
# builds has the expected elements (and the filter script shows its controls), and the page
# renders to a screenshot; without its script the page still has everything. Chromium runs with a
# fresh profile, no network features, bounded by timeout; anything of it still alive at the
# end is found by its unique profile folder and stopped by PID.
. "$(dirname "$0")/lib.sh"
it_init

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
    fail "$CHROMIUM not found (scripts/deps.sh installs Debian's chromium)"
    it_done
fi

H="$FL_TMP/report.html"
expect_exit 1 "$FL" run --html "$H" reports/
[ -s "$H" ] && ok "report written" || fail "no report at $H"

PROFILE="$FL_TMP/chromium-profile"
# chromium ARGS...: one bounded headless Chromium with a fresh profile; output in $FL_TMP/c.*
chromium() {
    rm -rf "$PROFILE"
    mkdir -p "$PROFILE"
    timeout -k 5 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --no-default-browser-check --user-data-dir="$PROFILE" \
        "$@" >"$FL_TMP/c.out" 2>"$FL_TMP/c.err" &
    cpid=$!
    wait "$cpid"
    CRC=$?
    reap_profile
}

# Stops (by PID) any process whose command line names our profile folder.
reap_profile() {
    for d in /proc/[0-9]*; do
        if tr '\000' ' ' <"$d/cmdline" 2>/dev/null | grep -Fq -- "--user-data-dir=$PROFILE"; then
            kill -9 "${d#/proc/}" 2>/dev/null
        fi
    done
}
trap 'reap_profile; it_cleanup' EXIT

chromium --dump-dom "file://$H"
expect_eq "chromium --dump-dom exit status" "$CRC" 0
D="$FL_TMP/dom.html"
cp "$FL_TMP/c.out" "$D"
expect_fgrep '<table id="summary">' "$D"
expect_fgrep '<details class="scenario fail" id="s-2" data-verdict="fail"' "$D"
expect_fgrep '<svg class="timeline"' "$D"
expect_fgrep '<g class="lane" data-instance="echo-2">' "$D"
expect_fgrep '<rect class="fault"' "$D"
expect_fgrep '<circle class="assert fail"' "$D"
expect_fgrep '<line class="failure"' "$D"
expect_fgrep '<table class="faults">' "$D"
expect_fgrep '<pre class="log">' "$D"
expect_fgrep 'tag[&lt;script&gt;alert(1)&lt;/script&gt;]' "$D"
# the filter script ran: its controls are shown
expect_fgrep '<div id="controls">' "$D"
# nothing a service printed became an element
expect_no_fgrep '<script>alert' "$D"

# A link to a folded (passing) scenario unfolds it.
expect_no_grep '<details class="scenario pass" id="s-1"[^>]* open' "$D"
chromium --dump-dom "file://$H#s-1"
cp "$FL_TMP/c.out" "$FL_TMP/dom-hash.html"
expect_grep '<details class="scenario pass" id="s-1"[^>]* open=""' "$FL_TMP/dom-hash.html"

# Without its script (headless Chromium needs scripts on to dump or capture, so the script is
# cut out of a copy): everything is still there to read, and the controls stay hidden.
NS="$FL_TMP/noscript.html"
sed '/^<script>/,/<\/script>$/d' "$H" >"$NS"
expect_no_fgrep '<script>' "$NS"
chromium --dump-dom "file://$NS"
N="$FL_TMP/dom-noscript.html"
cp "$FL_TMP/c.out" "$N"
expect_fgrep '<div id="controls" hidden="">' "$N"
expect_fgrep '<svg class="timeline"' "$N"
expect_fgrep '<table class="faults">' "$N"
expect_fgrep '<pre class="log">' "$N"

P="$FL_TMP/report.png"
chromium --window-size=1280,2000 --hide-scrollbars --screenshot="$P" "file://$H"
expect_eq "chromium --screenshot exit status" "$CRC" 0
if /usr/bin/python3 - "$P" >"$FL_TMP/png.out" 2>&1 <<'EOF'; then
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1280, 2000), (w, h)
assert len(data) > 20000, "suspiciously small: %d bytes" % len(data)
print("%dx%d, %d bytes" % (w, h, len(data)))
EOF
    ok "screenshot: $(cat "$FL_TMP/png.out")"
else
    fail "screenshot:"
    show "$FL_TMP/png.out"
    show "$FL_TMP/c.err"
fi

it_done
