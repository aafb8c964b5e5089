# The fake broker's memory follows what clients send, not what they announce: a raw client
# (Python sockets, no AMQP library) opens 200 channels and on each announces a 128 MiB
# message body (RabbitMQ's largest) without sending it. The broker's virtual memory
# (VmSize) must not grow by the announced 25 GiB (it did, once: bodies were reserved whole
# at the header). Then the client sends one whole 1 MiB body in frames and gets it back, so
# bodies that do arrive still work.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
it_init

start_fake_amqp
port=${FAKE_AMQP_URL##*:}
vm() { sed -n 's/^VmSize:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$FAKE_AMQP_PID/status"; }
before=$(vm)

cat >"$FL_TMP/announce.py" <<'PY'
import socket, struct, sys, time

port, vm_file = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)


def frame(t, ch, payload):
    return struct.pack(">BHI", t, ch, len(payload)) + payload + b"\xce"


def method(ch, cls, mid, args=b""):
    return frame(1, ch, struct.pack(">HH", cls, mid) + args)


def shortstr(x):
    return bytes([len(x)]) + x


def read_frame():
    head = b""
    while len(head) < 7:
        head += s.recv(7 - len(head))
    t, ch, n = struct.unpack(">BHI", head)
    body = b""
    while len(body) < n + 1:
        body += s.recv(n + 1 - len(body))
    return t, ch, body[:-1]


s.sendall(b"AMQP\x00\x00\x09\x01")
read_frame()  # start
resp = b"\x00guest\x00guest"
s.sendall(method(0, 10, 11, struct.pack(">I", 0) + shortstr(b"PLAIN") +
                 struct.pack(">I", len(resp)) + resp + shortstr(b"en_US")))
read_frame()  # tune
s.sendall(method(0, 10, 31, struct.pack(">HIH", 2047, 131072, 0)))
s.sendall(method(0, 10, 40, shortstr(b"/") + shortstr(b"") + b"\x00"))
read_frame()  # open-ok
big = 128 << 20
for ch in range(1, 201):
    s.sendall(method(ch, 20, 10, shortstr(b"")))
    s.sendall(method(ch, 60, 40, struct.pack(">H", 0) + shortstr(b"") + shortstr(b"nowhere") + b"\x00"))
    s.sendall(frame(2, ch, struct.pack(">HHQH", 60, 0, big, 0)))
for ch in range(1, 201):
    t, c, p = read_frame()
    assert (t, c) == (1, ch), (t, c, p[:8])  # channel.open-ok
# a real 1 MiB body on a new channel, to a queue, and back with basic.get
n = 1 << 20
s.sendall(method(300, 20, 10, shortstr(b"")))
read_frame()
s.sendall(method(300, 50, 10, struct.pack(">H", 0) + shortstr(b"mem") + b"\x00" + struct.pack(">I", 0)))
read_frame()  # declare-ok
s.sendall(method(300, 60, 40, struct.pack(">H", 0) + shortstr(b"") + shortstr(b"mem") + b"\x00"))
s.sendall(frame(2, 300, struct.pack(">HHQH", 60, 0, n, 0)))
body = bytes(i % 251 for i in range(n))
for off in range(0, n, 131064):
    s.sendall(frame(3, 300, body[off:off + 131064]))
open(vm_file, "w").write("sent\n")
s.sendall(method(300, 60, 70, struct.pack(">H", 0) + shortstr(b"mem") + b"\x01"))
t, c, p = read_frame()
assert (t, c, p[:4]) == (1, 300, struct.pack(">HH", 60, 71)), (t, c, p[:4])
read_frame()  # header
got = b""
while len(got) < n:
    t, c, p = read_frame()
    got += p
print("announced 200 x 128 MiB; 1 MiB body back intact:", got == body)
time.sleep(0.5)
PY
/usr/bin/python3 "$FL_TMP/announce.py" "$port" "$FL_TMP/sent" >"$FL_TMP/announce.out" 2>&1 &
pid=$!
it_track "$pid"
wait_until 20 test -s "$FL_TMP/sent" || fail "the client did not get to send its bodies"
after=$(vm)
wait "$pid"
expect_eq "the raw client's exit status" "$?" 0
expect_grep '1 MiB body back intact: True' "$FL_TMP/announce.out"
grow=$(( (after - before) / 1024 ))
echo "VmSize $before kB -> $after kB (+$grow MiB) for 25 GiB announced"
if [ "$grow" -lt 512 ]; then
    ok "announced bodies reserve no memory (+$grow MiB)"
else
    fail "VmSize grew by $grow MiB for bodies announced, not sent"
fi
stop_fake_amqp
it_done
