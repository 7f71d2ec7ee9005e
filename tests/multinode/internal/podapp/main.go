// Command podapp is the program inside the multi-node tests' pod image. It
// is built statically (CGO_ENABLED=0) so the image needs nothing else.
//
//	podapp serve PORT    answers "hello from HOSTNAME" over HTTP on PORT and
//	                     exits at once on SIGTERM
//	podapp grpc PORT     serves grpc.testing.TestService/UnaryCall on PORT,
//	                     answering with the hostname and $VERSION, and the
//	                     gRPC health service; on SIGTERM it reports
//	                     NOT_SERVING, keeps serving for $DRAIN_SECONDS
//	                     (default 0) while clients learn it is going, then
//	                     stops gracefully: RPCs in flight complete
//	podapp run SECONDS   sleeps SECONDS (a decimal) and exits 0: a batch task
//	                     (SIGTERM ends it early, with exit 1)
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

func main() {
	mode, arg := "serve", "8080"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	var err error
	switch mode {
	case "serve":
		err = serveHTTP(arg)
	case "grpc":
		err = serveGRPC(arg)
	case "run":
		err = run(arg)
	default:
		err = fmt.Errorf("unknown mode %q: want serve PORT, grpc PORT or run SECONDS", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "podapp:", err)
		os.Exit(1)
	}
}

func serveHTTP(port string) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; os.Exit(0) }()
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "hello from %s\n", host) })
	return http.ListenAndServe(":"+port, nil)
}

// testService answers UnaryCall with who answered.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	host, version string
}

func (s *testService) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Hostname: s.host, ServerId: s.version}, nil
}

func serveGRPC(port string) error {
	drain := time.Duration(0)
	if v := os.Getenv("DRAIN_SECONDS"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0 {
			return fmt.Errorf("DRAIN_SECONDS: %q is not a number of seconds >= 0", v)
		}
		drain = time.Duration(secs * float64(time.Second))
	}
	lis, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, &testService{host: host, version: os.Getenv("VERSION")})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		hs.Shutdown() // every service NOT_SERVING: readiness fails from now on
		time.Sleep(drain)
		srv.GracefulStop()
	}()
	return srv.Serve(lis)
}

func run(arg string) error {
	secs, err := strconv.ParseFloat(arg, 64)
	if err != nil || secs < 0 {
		return fmt.Errorf("run: %q is not a number of seconds >= 0", arg)
	}
	// PID 1 of its container, it ends on SIGTERM only if it asks to.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-time.After(time.Duration(secs * float64(time.Second))):
		return nil
	case <-sig:
		return errors.New("run: terminated")
	}
}
