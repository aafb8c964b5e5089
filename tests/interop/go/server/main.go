// The seed's Go greeter server (seed/000_557db4ed9a910b63.txt, "实现 gRPC 服务端"), built
// against Debian's grpc-go in GOPATH mode by tests/interop/go/build.sh. Changes from the
// seed, all for testing: the listen address comes from -listen (default the seed's ":50051"),
// SIGTERM stops it gracefully (exit 0), and with GREETER_TEST_HOOKS=1 it honours the same
// request metadata as our greeter (x-delay-ms, x-fail-code, x-fail-message, x-echo). The
// seed's per-request log line is kept behind -log (off for the benchmark).
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	pb "greeter/proto"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var codeNames = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

type server struct {
	pb.UnimplementedGreeterServer
	hooks bool
	logs  bool
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *server) SayHello(ctx context.Context, in *pb.HelloRequest) (*pb.HelloReply, error) {
	if s.logs {
		log.Printf("Received: %v", in.GetName())
	}
	if s.hooks {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := first(md, "x-echo"); v != "" {
			grpc.SetHeader(ctx, metadata.Pairs("x-echo", v))
			grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", v))
		}
		if c := first(md, "x-fail-code"); c != "" {
			msg, _ := url.PathUnescape(first(md, "x-fail-message"))
			for i, n := range codeNames {
				if n == c {
					return nil, status.Error(codes.Code(i), msg)
				}
			}
			return nil, status.Error(codes.InvalidArgument, "x-fail-code: not a status code")
		}
		if d := first(md, "x-delay-ms"); d != "" {
			ms, _ := strconv.Atoi(d)
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-ctx.Done():
				return nil, status.FromContextError(ctx.Err()).Err()
			}
		}
	}
	return &pb.HelloReply{Message: "Hello " + in.GetName()}, nil
}

func main() {
	listen := flag.String("listen", ":50051", "address to listen on")
	logs := flag.Bool("log", false, "log every request, as the seed does")
	flag.Parse()
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("failed to listen: %v", err)
	}

	s := grpc.NewServer()
	pb.RegisterGreeterServer(s, &server{hooks: os.Getenv("GREETER_TEST_HOOKS") == "1", logs: *logs})

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		s.GracefulStop()
	}()

	log.Println("gRPC server listening on", lis.Addr())
	if err := s.Serve(lis); err != nil {
		log.Fatalf("failed to serve: %v", err)
	}
	log.Println("stopped")
}
