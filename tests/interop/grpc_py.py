# python3-grpcio (Debian's, seen only by /usr/bin/python3) against our gRPC services, both
# ways. Messages are classes protoc generated from services/proto (--python_out, at test
# time, into the folder given by PYTHONPATH); calls use grpcio's generic API
# (channel.unary_unary, method_handlers_generic_handler), as python3-grpc-tools is not used.
#
#   grpc_py.py client ADDR   checks against our greeter at ADDR; one "ok: "/"FAIL: " line per
#                            check, then "all python checks passed" (exit 0) or exit 1
#   grpc_py.py shop USERS SLOW_USERS ORDERS
#                            checks against our users (instance "users-py"), a users with
#                            USERS_DELAY_MS=1000 (instance "users-slow") and an orders
#                            without AMQP_URL; same output
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
import shop_pb2

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


def shop_stub(channel, path, req, rep):
    return channel.unary_unary(path, request_serializer=req.SerializeToString,
                               response_deserializer=rep.FromString)


def health_of(addr, svc):
    with grpc.insecure_channel(addr) as ch:
        check_rpc = shop_stub(ch, "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest,
                              health_pb2.HealthCheckResponse)
        r = check_rpc(health_pb2.HealthCheckRequest(service=svc), timeout=5)
        check("health %r SERVING" % svc, r.status == health_pb2.HealthCheckResponse.SERVING, r)


def shop_users(addr, slow_addr):
    channel = grpc.insecure_channel(addr)
    create = shop_stub(channel, "/shop.Users/CreateUser", shop_pb2.CreateUserRequest, shop_pb2.User)
    get = shop_stub(channel, "/shop.Users/GetUser", shop_pb2.GetUserRequest, shop_pb2.User)
    req = shop_pb2.CreateUserRequest

    u = create(req(name="Ada", email="ada@example.com"), timeout=5)
    check("CreateUser Ada: id users-py.1", u.id == "users-py.1", u)
    check("CreateUser Ada: name and email", (u.name, u.email) == ("Ada", "ada@example.com"), u)
    g = get(shop_pb2.GetUserRequest(id=u.id), timeout=5)
    check("GetUser users-py.1 is Ada", g == u, g)
    u2 = create(req(name="Ünïcode ☃", email="u@x"), timeout=5)
    check("CreateUser with a Unicode name", u2.id == "users-py.2" and u2.name == "Ünïcode ☃", u2)
    check("GetUser of it", get(shop_pb2.GetUserRequest(id=u2.id), timeout=5) == u2)

    expect_error("CreateUser with an empty name", lambda: create(req(name="", email="a@b"), timeout=5),
                 grpc.StatusCode.INVALID_ARGUMENT, "name must be 1 to 100 characters")
    expect_error("CreateUser with a 101-character name",
                 lambda: create(req(name="n" * 101, email="a@b"), timeout=5),
                 grpc.StatusCode.INVALID_ARGUMENT, "name must be 1 to 100 characters")
    expect_error("CreateUser with an email without @",
                 lambda: create(req(name="Bob", email="bob"), timeout=5),
                 grpc.StatusCode.INVALID_ARGUMENT, "email must contain @")
    expect_error("GetUser of an unknown id", lambda: get(shop_pb2.GetUserRequest(id="nope"), timeout=5),
                 grpc.StatusCode.NOT_FOUND, "no user nope")
    expect_error("GetUser of an empty id", lambda: get(shop_pb2.GetUserRequest(id=""), timeout=5),
                 grpc.StatusCode.NOT_FOUND, "no user ")
    expect_error("an unknown method", lambda: shop_stub(channel, "/shop.Users/DeleteUser", req,
                                                        shop_pb2.User)(req(name="x"), timeout=5),
                 grpc.StatusCode.UNIMPLEMENTED)

    # 100 creations in flight on one channel: 100 different ids, each found again
    futs = [create.future(req(name="n%d" % i, email="n%d@x" % i), timeout=10) for i in range(100)]
    made = [f.result() for f in futs]
    check("100 concurrent CreateUser: 100 different ids", len({m.id for m in made}) == 100)
    check("... each with its own name", all(m.name == "n%d" % i for i, m in enumerate(made)))
    check("... each found by GetUser",
          all(get(shop_pb2.GetUserRequest(id=m.id), timeout=5) == m for m in made))
    health_of(addr, "")
    health_of(addr, "shop.Users")
    channel.close()

    # deadlines, against the users that answers 1 s late: the call ends at its deadline, and
    # the user it asked for is never made (the next one made gets users-slow.1)
    slow = grpc.insecure_channel(slow_addr)
    screate = shop_stub(slow, "/shop.Users/CreateUser", shop_pb2.CreateUserRequest, shop_pb2.User)
    t0 = time.monotonic()
    expect_error("CreateUser, deadline 200 ms, answer after 1 s",
                 lambda: screate(req(name="Late", email="l@x"), timeout=0.2),
                 grpc.StatusCode.DEADLINE_EXCEEDED)
    took = time.monotonic() - t0
    check("the deadline ended the call in 0.2..0.9 s (%.3f s)" % took, 0.19 <= took < 0.9)
    t0 = time.monotonic()
    u = screate(req(name="Patient", email="p@x"), timeout=5)
    took = time.monotonic() - t0
    check("CreateUser within a 5 s deadline, answered after %.3f s" % took, took >= 0.99)
    check("the late user was not made: the next is users-slow.1", u.id == "users-slow.1", u)
    slow.close()


def shop_orders(addr):
    channel = grpc.insecure_channel(addr)
    create = shop_stub(channel, "/shop.Orders/CreateOrder", shop_pb2.CreateOrderRequest,
                       shop_pb2.Order)
    get = shop_stub(channel, "/shop.Orders/GetOrder", shop_pb2.GetOrderRequest, shop_pb2.Order)
    req = shop_pb2.CreateOrderRequest

    o = create(req(user_id="users-py.1", item="book", amount=1250), timeout=5)
    check("CreateOrder: an id o-<16 hex>", len(o.id) == 18 and o.id.startswith("o-") and
          all(c in "0123456789abcdef" for c in o.id[2:]), o)
    check("CreateOrder: the order, status created",
          (o.user_id, o.item, o.amount, o.status) == ("users-py.1", "book", 1250, "created"), o)
    g = get(shop_pb2.GetOrderRequest(id=o.id), timeout=5)
    check("GetOrder: the same order, still created (nothing pays it)", g == o, g)
    big = create(req(user_id="u", item="Ünïcode ☃", amount=2**53 + 1), timeout=5)
    check("an amount over 2^53 and a Unicode item round-trip",
          get(shop_pb2.GetOrderRequest(id=big.id), timeout=5).amount == 2**53 + 1 and
          big.item == "Ünïcode ☃", big)

    msg = "user_id and item must be set and amount positive"
    for what, r in (("amount 0", req(user_id="u", item="i", amount=0)),
                    ("amount -5", req(user_id="u", item="i", amount=-5)),
                    ("no user_id", req(item="i", amount=1)),
                    ("no item", req(user_id="u", amount=1))):
        expect_error("CreateOrder with " + what, lambda: create(r, timeout=5),
                     grpc.StatusCode.INVALID_ARGUMENT, msg)
    expect_error("GetOrder of an unknown id", lambda: get(shop_pb2.GetOrderRequest(id="o-nope"), timeout=5),
                 grpc.StatusCode.NOT_FOUND, "no order o-nope")

    # a deadline the server reads (grpc-timeout) and meets
    t0 = time.monotonic()
    o2 = create(req(user_id="u", item="pen", amount=1), timeout=0.5)
    check("CreateOrder within a 500 ms deadline (%.3f s)" % (time.monotonic() - t0), o2.status == "created")

    futs = [create.future(req(user_id="u", item="i%d" % i, amount=i + 1), timeout=10) for i in range(100)]
    made = [f.result() for f in futs]
    check("100 concurrent CreateOrder: 100 different ids", len({m.id for m in made}) == 100)
    check("... each found by GetOrder",
          all(get(shop_pb2.GetOrderRequest(id=m.id), timeout=5) == m for m in made))
    health_of(addr, "shop.Orders")
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
    elif len(sys.argv) == 5 and sys.argv[1] == "shop":
        shop_users(sys.argv[2], sys.argv[3])
        shop_orders(sys.argv[4])
        if FAILS:
            sys.exit(1)
        print("all python checks passed")
    elif len(sys.argv) == 2 and sys.argv[1] == "server":
        server()
    else:
        sys.exit("usage: grpc_py.py client ADDR | shop USERS SLOW_USERS ORDERS | server")
