#!/usr/bin/env python3
"""grpc_flood.py MODE HOST:PORT SERVER_PID: a hostile HTTP/2 client against our greeter, on a
raw socket (frames and HPACK written by hand), that measures how much the server's memory
grows. It never reads the socket: WINDOW_UPDATEs, answers and all stay unread.

  noread   asks /hello.Greeter/SayHello with a 256 KiB name again and again (each answer is
           as big), having given the server all the flow-control credit it can use: a
           server that keeps reading buffers every answer it cannot write.
  partial  opens 64 streams, each announcing a 4 MiB - 64 message, and sends 2 MiB of it on
           each (never the end): a server that keeps every byte until a message is whole
           holds all of it.

Sending stops when the budget is sent or when the socket has taken nothing for 2 s (the
server stopped reading: back-pressure). Prints one line "MODE: sent N MiB, server VmRSS A
-> peak B KiB (+G MiB)" and exits 1 when the growth is over LIMIT_MIB (default 32)."""
import os
import select
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_FRAME = 16384


def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_str(s):
    b = s.encode()
    assert len(b) < 127
    return bytes([len(b)]) + b


def request_headers(path):
    # :method POST (static 3), :scheme http (static 6), then literals without indexing
    block = b"\x83\x86"
    block += b"\x04" + hpack_str(path)  # :path, name from static entry 4
    block += b"\x01" + hpack_str("localhost")  # :authority, static entry 1
    for n, v in (("content-type", "application/grpc"), ("te", "trailers")):
        block += b"\x00" + hpack_str(n) + hpack_str(v)
    return block


def data_frames(stream, payload, end):
    out = b""
    for off in range(0, len(payload), MAX_FRAME):
        chunk = payload[off:off + MAX_FRAME]
        last = off + MAX_FRAME >= len(payload)
        out += frame(0, 1 if (end and last) else 0, stream, chunk)
    return out


def rss(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit("no %s for pid %d" % (field, pid))


def hello_request(name_len):
    # HelloRequest{name = 'x' * name_len}: field 1, length-delimited (varint length)
    n, varint = name_len, b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            varint += bytes([b | 0x80])
        else:
            varint += bytes([b])
            break
    msg = b"\x0a" + varint + b"x" * name_len
    return b"\x00" + struct.pack(">I", len(msg)) + msg


class Sender:
    """Writes to a non-blocking socket; gives up once nothing went out for `stall` s."""

    def __init__(self, sock, budget, stall=2.0, limit_s=60.0):
        self.sock, self.budget, self.stall = sock, budget, stall
        self.sent, self.blocked = 0, False
        self.end = time.monotonic() + limit_s

    def send(self, data):
        view = memoryview(data)
        last = time.monotonic()
        while view:
            if self.sent >= self.budget or time.monotonic() > self.end:
                return False
            _, w, _ = select.select([], [self.sock], [], 0.2)
            if not w:
                if time.monotonic() - last > self.stall:
                    self.blocked = True
                    return False
                continue
            try:
                n = self.sock.send(view)
            except BlockingIOError:
                continue
            self.sent += n
            view = view[n:]
            last = time.monotonic()
        return True


def main():
    mode, addr, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    limit = float(os.environ.get("LIMIT_MIB", "32"))
    host, port = addr.rsplit(":", 1)
    before = rss(pid, "VmRSS")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.setblocking(False)
    # the settings: the server may send us 2^31-1 bytes per stream, and on the connection
    settings = struct.pack(">HI", 4, 0x7FFFFFFF) + struct.pack(">HI", 3, 1000)
    start = PREFACE + frame(4, 0, 0, settings) + \
        frame(8, 0, 0, struct.pack(">I", 0x7FFFFFFF - 65535))
    s = Sender(sock, budget=(96 if mode == "noread" else 128) << 20)
    s.send(start)
    stream = 1
    if mode == "noread":
        body = data_frames(0, hello_request(256 << 10), True)  # stream id patched below
        hdrs = request_headers("/hello.Greeter/SayHello")
        while True:
            req = frame(1, 4, stream, hdrs)  # END_HEADERS
            # re-stamp the DATA frames with this stream id
            out = bytearray(body)
            for off in range(0, len(out), 9 + MAX_FRAME):
                struct.pack_into(">I", out, off + 5, stream)
            if not s.send(req + bytes(out)):
                break
            stream += 2
    elif mode == "partial":
        nstreams, each = 64, 2 << 20
        hdrs = request_headers("/hello.Greeter/SayHello")
        declared = (4 << 20) - 64
        for i in range(nstreams):
            sid = 1 + 2 * i
            prefix = b"\x00" + struct.pack(">I", declared) + b"\x0a" + b"\xb9\xff\xff\x01"
            s.send(frame(1, 4, sid, hdrs) + frame(0, 0, sid, prefix))
        chunk = b"x" * MAX_FRAME
        done = False
        for _ in range(each // MAX_FRAME):
            for i in range(nstreams):
                if not s.send(frame(0, 0, 1 + 2 * i, chunk)):
                    done = True
                    break
            if done:
                break
    else:
        raise SystemExit("unknown mode " + mode)
    time.sleep(1.0)  # let the server take in what it has read
    peak, now = rss(pid, "VmHWM"), rss(pid, "VmRSS")
    growth = (peak - before) / 1024
    print("%s: sent %.1f MiB%s, server VmRSS %d -> peak %d KiB (+%.1f MiB), now %d KiB" %
          (mode, s.sent / 1048576, " (then the server stopped reading)" if s.blocked else "",
           before, peak, growth, now))
    sock.close()
    sys.exit(1 if growth > limit else 0)


if __name__ == "__main__":
    main()
