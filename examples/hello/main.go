// Command hello is Bosun's demo app: a tiny web server on :5000 that answers
// every request with its version and the host name it runs on (in Bosun, the
// pod's name), and /healthz for the readiness probe. It answers the same on
// gRPC, port 50051, for the proxyless gRPC demo: bin/hello-client dials
// xds:///hello.default and the service-proxy spreads its calls over the pods.
//
//	hello [-listen :5000] [-grpc-listen :50051]
//
// The gRPC service is bosun.examples.hello.v1.Hello with one unary method,
// SayHello, whose request and reply are google.protobuf.StringValue: the
// request's value is ignored, the reply's is the same line as the web
// server's. Being made of well-known types, it needs no generated code.
//
// The version is stamped at build time with
// -ldflags "-X main.version=v2"; `devregistry` builds v1 and v2 images of it
// for rolling-update demos. It is a module of its own that needs only grpc-go
// and protobuf, and builds as a static binary with CGO_ENABLED=0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

// answer is what every request gets.
func answer(host string) string {
	return fmt.Sprintf("hello from %s (version %s)", host, version)
}

func handler(host string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, answer(host))
	})
	return mux
}

// SayHelloMethod is the full name of the gRPC method, as clients invoke it.
const SayHelloMethod = "/bosun.examples.hello.v1.Hello/SayHello"

// helloServer is the gRPC service's implementation.
type helloServer interface {
	SayHello(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

type hello struct{ host string }

func (h hello) SayHello(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	return wrapperspb.String(answer(h.host)), nil
}

// helloService describes bosun.examples.hello.v1.Hello to grpc-go, as
// generated code would.
var helloService = grpc.ServiceDesc{
	ServiceName: "bosun.examples.hello.v1.Hello",
	HandlerType: (*helloServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "SayHello",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			if intercept == nil {
				return srv.(helloServer).SayHello(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: SayHelloMethod}
			return intercept(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return srv.(helloServer).SayHello(ctx, req.(*wrapperspb.StringValue))
			})
		},
	}},
}

// grpcServer is the gRPC side: the Hello service and gRPC health.
func grpcServer(host string) *grpc.Server {
	g := grpc.NewServer()
	g.RegisterService(&helloService, hello{host: host})
	healthpb.RegisterHealthServer(g, health.NewServer())
	return g
}

func main() {
	listen := flag.String("listen", ":5000", "address of the web server")
	grpcListen := flag.String("grpc-listen", ":50051", "address of the gRPC server")
	flag.Parse()
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	gl, err := net.Listen("tcp", *grpcListen)
	if err != nil {
		log.Fatal(err)
	}
	g := grpcServer(host)
	srv := &http.Server{Addr: *listen, Handler: handler(host), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		stopped := make(chan struct{})
		go func() { g.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-shutdown.Done():
			g.Stop()
		}
	}()
	go func() {
		if err := g.Serve(gl); err != nil {
			log.Fatal(err)
		}
	}()
	log.Printf("hello %s listening on %s (gRPC %s) as %s", version, *listen, *grpcListen, host)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
