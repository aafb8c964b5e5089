// The seed's Go greeter client (seed/000_557db4ed9a910b63.txt, "实现 gRPC 客户端"), built
// against Debian's grpc-go in GOPATH mode by tests/interop/go/build.sh. As in the seed it
// dials with WithInsecure and WithBlock, calls SayHello with a 1 s deadline and logs
// "Greeting: ..."; for the interop tests it takes flags: -addr (default the seed's
// localhost:50051), -name, -name-size, -timeout, -meta k=v (repeatable), -method (call
// another path with the same request), -health SERVICE (grpc.health.v1 Check), -n calls.
// Each call prints one line: "Greeting: Hello World", "health: SERVING", or
// "error: code=DeadlineExceeded desc=...", then any x-* header/trailer it got back.
// Exit status: 0 if every call succeeded, 1 otherwise.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	pb "greeter/proto"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type metaFlags []string

func (m *metaFlags) String() string     { return strings.Join(*m, ",") }
func (m *metaFlags) Set(v string) error { *m = append(*m, v); return nil }

func printMeta(kind string, md metadata.MD) {
	for k, v := range md {
		if strings.HasPrefix(k, "x-") {
			fmt.Printf("%s %s=%s\n", kind, k, strings.Join(v, ","))
		}
	}
}

func main() {
	addr := flag.String("addr", "localhost:50051", "server address")
	name := flag.String("name", "World", "name to greet")
	nameSize := flag.Int("name-size", 0, "greet a name of N 'x' bytes instead")
	timeout := flag.Duration("timeout", time.Second, "deadline of each call")
	method := flag.String("method", "", "call this path instead of SayHello")
	health := flag.String("health", "\x00", "call grpc.health.v1.Health/Check for this service")
	calls := flag.Int("n", 1, "calls to make")
	var metas metaFlags
	flag.Var(&metas, "meta", "request metadata k=v (repeatable)")
	flag.Parse()
	if *nameSize > 0 {
		*name = strings.Repeat("x", *nameSize)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	conn, err := grpc.DialContext(dctx, *addr, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(4<<20)))
	if err != nil {
		log.Fatalf("did not connect: %v", err)
	}
	defer conn.Close()
	c := pb.NewGreeterClient(conn)

	failed := false
	for i := 0; i < *calls; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		for _, kv := range metas {
			p := strings.SplitN(kv, "=", 2)
			ctx = metadata.AppendToOutgoingContext(ctx, p[0], p[1])
		}
		var header, trailer metadata.MD
		opts := []grpc.CallOption{grpc.Header(&header), grpc.Trailer(&trailer)}
		switch {
		case *health != "\x00":
			var r *healthpb.HealthCheckResponse
			r, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *health}, opts...)
			if err == nil {
				fmt.Printf("health: %s\n", r.GetStatus())
			}
		case *method != "":
			r := new(pb.HelloReply)
			err = conn.Invoke(ctx, *method, &pb.HelloRequest{Name: *name}, r, opts...)
			if err == nil {
				fmt.Printf("Greeting: %s\n", r.GetMessage())
			}
		default:
			var r *pb.HelloReply
			r, err = c.SayHello(ctx, &pb.HelloRequest{Name: *name}, opts...)
			if err == nil {
				msg := r.GetMessage()
				if len(msg) > 60 {
					msg = fmt.Sprintf("%.20s... (%d bytes)", msg, len(msg))
				}
				fmt.Printf("Greeting: %s\n", msg)
			}
		}
		cancel()
		if err != nil {
			st, _ := status.FromError(err)
			fmt.Printf("error: code=%s desc=%s\n", st.Code(), st.Message())
			failed = true
		}
		printMeta("header", header)
		printMeta("trailer", trailer)
	}
	if failed {
		os.Exit(1)
	}
}
