# The gRPC server's memory per connection is bounded (services/runtime/grpc_server.h): a
# hostile client on a raw socket (grpc_flood.py) against the greeter — one that never reads
# the 256 KiB answers it keeps asking for (the server must stop reading it: back-pressure),
# and one that sends 2 MiB of 64 requests of 4 MiB each and never finishes any (the server
# must refuse what goes past its per-connection limit). Each time the greeter's peak VmRSS
# may grow by at most 32 MiB (48 under ASan) while the client pushes 96 or 128 MiB; before the bounds it grew
# by 93 and 128 MiB. The greeter then still answers and exits 0 on SIGTERM.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

PY=/usr/bin/python3
[ -x "$PY" ] || skip "$PY is missing"
# ASan keeps freed memory in quarantine (256 MiB by default), which would count as growth;
# its redzones add a third (partial: +28 MiB under ASan, +20 without): 48 MiB there
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
if ldd "$FL_BIN_DIR/greeter" 2>/dev/null | grep -q libasan; then
    export LIMIT_MIB=48
fi

for mode in noread partial; do
    start_svc "greeter-$mode" greeter INSTANCE_ID=greeter-1
    G_PID=$SVC_PID G_ADDR=$SVC_ADDR LOG="$FL_TMP/greeter-$mode.log"
    IT_LIMIT=90 run "$PY" "$FL_SOURCE_DIR/tests/integration/grpc_flood.py" "$mode" "$G_ADDR" "$G_PID"
    cat "$OUT"
    expect_eq "$mode: the greeter's memory stays bounded (grpc_flood.py exit status)" "$RC" 0
    [ "$RC" -eq 0 ] || show "$ERR"
    [ "$mode" = noread ] && expect_grep 'then the server stopped reading' "$OUT"
    run "$FL_BIN_DIR/greeter-client" -n 3 "$G_ADDR"
    expect_grep 'calls=3 OK=3' "$OUT"
    stop_pid "$G_PID" "greeter after $mode"
    expect_no_grep 'Sanitizer|runtime error|handles left' "$LOG"
done
it_done
