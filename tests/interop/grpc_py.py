# python3-grpcio (Debian's, seen only by /usr/bin/python3) against our gRPC services, both
# ways. Messages are classes protoc generated from services/proto (--python_out, at test
# time, into the folder given by PYTHONPATH); calls use grpcio's generic API
# (channel.unary_unary, method_handlers_generic_handler), as python3-grpc-tools is not used.
#
#   grpc_py.py client ADDR   checks against our greeter at ADDR; one "ok: "/"FAIL: " line per
#                            check, then "all python checks passed" (exit 0) or exit 1
#   grpc_py.py server        a grpcio Greeter on 127.0.0.1 (free port) with the greeter's
#                            test metadata (x-delay-ms, x-fail-code, x-fail-message, x-echo);
#                            prints "listening on 127.0.0.1:PORT"; stops on SIGTERM
import signal
import sys
import threading
import time
import urllib.parse
from concurrent import futures

import grpc

import health_pb2
import hello_pb2

FAILS = []


def check(what, cond, detail=""):
    if cond:
        print("ok: " + what, flush=True)
    else:
        FAILS.append(what)
        print("FAIL: %s %s" % (what, str(detail)), flush=True)


def say_hello_stub(channel, path="/hello.Greeter/SayHello"):
    return channel.unary_unary(
        path,
        request_serializer=hello_pb2.HelloRequest.SerializeToString,
        response_deserializer=hello_pb2.HelloReply.FromString,
    )


def expect_error(what, fn, code, details=None):
    try:
        fn()
    except grpc.RpcError as e:
        check("%s: %s" % (what, code.name), e.code() == code, "got %s %r" % (e.code(), e.details()))
        if details is not None:
            check("%s: details %r" % (what, details), e.details() == details, "got %r" % e.details())
        return e
    check("%s: %s" % (what, code.name), False, "the call succeeded")
    return None


def client(addr):
    channel = grpc.insecure_channel(addr)
    hello = say_hello_stub(channel)
    req = hello_pb2.HelloRequest

    r = hello(req(name="World"), timeout=5)
    check("SayHello World", r.message == "Hello World", repr(r.message))
    r = hello(req(name="Ünïcode ☃"), timeout=5)
    check("SayHello with a Unicode name", r.message == "Hello Ünïcode ☃", repr(r.message))

    r, call = hello.with_call(req(name="md"), timeout=5, metadata=(("x-echo", "v1"),))
    check("initial metadata", ("x-echo", "v1") in call.initial_metadata(), call.initial_metadata())
    check("trailing metadata", ("x-echo-trailer", "v1") in call.trailing_metadata(),
          call.trailing_metadata())
    check("status OK", call.code() == grpc.StatusCode.OK, call.code())

    # every non-OK status code, with a message that needs percent-encoding (metadata values
    # are ASCII: the greeter percent-decodes x-fail-message, as grpc-message is)
    for code in grpc.StatusCode:
        if code == grpc.StatusCode.OK:
            continue
        expect_error("x-fail-code=" + code.name,
                     lambda: hello(req(name="x"), timeout=5,
                                   metadata=(("x-fail-code", code.name),
                                             ("x-fail-message", "nope: 100%25 %F0%9F%98%80%0A"))),
                     code, "nope: 100% 😀\n")

    # the deadline: grpcio's own, and ours answering it
    t0 = time.monotonic()
    expect_error("deadline 200 ms, answer after 2 s",
                 lambda: hello(req(name="slow"), timeout=0.2, metadata=(("x-delay-ms", "2000"),)),
                 grpc.StatusCode.DEADLINE_EXCEEDED)
    took = time.monotonic() - t0
    check("the deadline ended the call in 0.2..1.5 s (%.3f s)" % took, 0.19 <= took < 1.5)
    r = hello(req(name="in time"), timeout=2, metadata=(("x-delay-ms", "100"),))
    check("a delayed answer within its deadline", r.message == "Hello in time")

    expect_error("unknown method", lambda: say_hello_stub(channel, "/hello.Greeter/Nope")(
        req(name="x"), timeout=5), grpc.StatusCode.UNIMPLEMENTED)
    expect_error("unknown service", lambda: say_hello_stub(channel, "/no.Such/Thing")(
        req(name="x"), timeout=5), grpc.StatusCode.UNIMPLEMENTED)

    # large messages: 3 MB both ways; over 4 MiB refused by our server; over the client's
    # own receive limit refused by grpcio
    r = hello(req(name="x" * 3000000), timeout=10)
    check("3 MB request and answer", len(r.message) == 3000006, len(r.message))
    expect_error("a 4 MiB + 1 request", lambda: hello(req(name="x" * 4194305), timeout=10),
                 grpc.StatusCode.RESOURCE_EXHAUSTED)
    small = grpc.insecure_channel(addr, options=[("grpc.max_receive_message_length", 1000000)])
    expect_error("a 2 MB answer to a client that takes 1 MB",
                 lambda: say_hello_stub(small)(req(name="x" * 2000000), timeout=10),
                 grpc.StatusCode.RESOURCE_EXHAUSTED)
    small.close()

    # health
    check_rpc = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString)
    for svc in ("", "hello.Greeter"):
        r = check_rpc(health_pb2.HealthCheckRequest(service=svc), timeout=5)
        check("health %r SERVING" % svc, r.status == health_pb2.HealthCheckResponse.SERVING, r)
    expect_error("health of an unknown service",
                 lambda: check_rpc(health_pb2.HealthCheckRequest(service="nope"), timeout=5),
                 grpc.StatusCode.NOT_FOUND)

    # 300 calls in flight at once on the one channel
    futs = [hello.future(req(name="n%d" % i), timeout=10, metadata=(("x-delay-ms", "200"),))
            for i in range(300)]
    t0 = time.monotonic()
    answers = [f.result().message for f in futs]
    took = time.monotonic() - t0
    check("300 concurrent calls answered", answers == ["Hello n%d" % i for i in range(300)])
    check("... concurrently (%.2f s)" % took, took < 3)
    channel.close()


def server():
    def say_hello(request, context):
        md = dict(context.invocation_metadata())
        if "x-echo" in md:
            context.send_initial_metadata((("x-echo", md["x-echo"]),))
            context.set_trailing_metadata((("x-echo-trailer", md["x-echo"]),))
        if "x-fail-code" in md:
            msg = urllib.parse.unquote(md.get("x-fail-message", ""), errors="strict")
            context.abort(grpc.StatusCode[md["x-fail-code"]], msg)
        end = time.monotonic() + int(md.get("x-delay-ms", "0")) / 1000.0
        while time.monotonic() < end and context.is_active():
            time.sleep(0.005)
        return hello_pb2.HelloReply(message="Hello " + request.name)

    handler = grpc.method_handlers_generic_handler("hello.Greeter", {
        "SayHello": grpc.unary_unary_rpc_method_handler(
            say_hello,
            request_deserializer=hello_pb2.HelloRequest.FromString,
            response_serializer=hello_pb2.HelloReply.SerializeToString)})
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    srv.add_generic_rpc_handlers((handler,))
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    print("listening on 127.0.0.1:%d" % port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    done.wait(120)  # bounded: the test stops it long before
    srv.stop(grace=1).wait()
    print("stopped", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "client":
        client(sys.argv[2])
        if FAILS:
            sys.exit(1)
        print("all python checks passed")
    elif len(sys.argv) == 2 and sys.argv[1] == "server":
        server()
    else:
        sys.exit("usage: grpc_py.py client ADDR | server")
