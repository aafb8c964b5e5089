# The HTML report of a real run, opened from disk by Debian's headless Chromium: the DOM it
# builds has the expected elements (and the filter script shows its controls), and the page
# renders to a screenshot; without its script the page still has everything. Chromium runs with a
# fresh profile, no network features, bounded by timeout; anything of it still alive at the
# end is found by its unique profile folder and stopped by PID. Last, a report with real data
# (a load, a fault, traces) has its charts and a retried request's waterfall.
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

# A report with real data: reports-load/shop.lua runs a t:load through the gateway (one
# request in ten to a missing path) while connections to users are reset, with tracing on.
# The DOM must chart the per-second samples (request rate, latency, error rate: lines with
# points above zero) and hold a waterfall of a retried request (retried, not failed).
MARK=$(new_mark)
HL="$FL_TMP/load.html"
expect_exit 0 env IT_MARK="$MARK" "$FL" run --html "$HL" reports-load/shop.lua
chromium --dump-dom "file://$HL#s-1"
expect_eq "chromium --dump-dom exit status (load report)" "$CRC" 0
DL="$FL_TMP/dom-load.html"
cp "$FL_TMP/c.out" "$DL"
expect_fgrep '<div class="series" data-series="gateway">' "$DL"
/usr/bin/python3 - "$DL" >"$FL_TMP/charts.out" 2>&1 <<'EOF'
import re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
series = dom[dom.index('<div class="series" data-series="gateway">'):]
series = series[:series.index("</div>")]
# chart y runs from 106 (zero) up to 16 (the largest value); every chart has its own scale
for cls in ["l-sent", "l-ok", "l-err", "l-p50", "l-p90", "l-p99", "l-rate"]:
    m = re.search(r'<polyline class="%s" points="([^"]*)"' % cls, series)
    pts = [tuple(map(float, p.split(","))) for p in m.group(1).split()] if m else []
    above = [p for p in pts if p[1] < 105.9]
    print("%s %s: %d points, %d above zero" % ("ok:" if pts and above else "FAIL:", cls, len(pts), len(above)))
traces = re.findall(r'<div class="trace" data-trace="[0-9a-f]{32}"><b>trace [0-9a-f]{32}</b> '
                    r'<span class="muted">(\d+) spans, [0-9.]+s, (retried|failed)</span>(.*?)</div>', dom, re.S)
retried = [t for t in traces if t[1] == "retried" and int(t[0]) >= 4 and
           re.search(r'<rect class="span (error )?retry"', t[2])]
print("%s %d waterfalls, %d of a retried request" % ("ok:" if retried else "FAIL:", len(traces), len(retried)))
EOF
cat "$FL_TMP/charts.out"
IT_CHECKS=$((IT_CHECKS + $(grep -c '^ok: ' "$FL_TMP/charts.out")))
n=$(grep -vc '^ok: ' "$FL_TMP/charts.out")
IT_CHECKS=$((IT_CHECKS + n))
IT_FAILS=$((IT_FAILS + n))
expect_no_marker "$MARK" 5 "after reports-load/shop.lua"

it_done
