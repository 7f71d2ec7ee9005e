// Command hello-client calls the demo app's gRPC service (examples/hello)
// and prints each reply, for the proxyless gRPC demo of `make run`:
//
//	GRPC_XDS_BOOTSTRAP=.run/xds-bootstrap.json hello-client [-n 6] [-interval 100ms] xds:///hello.default:50051
//
// With an xds:/// target grpc-go itself is the load balancer: it asks the
// service-proxy (named by the bootstrap file, which
// `service-proxy bootstrap --format grpc` writes) for the Service's
// endpoints and spreads the calls over the pods round robin, so the replies
// name different pods (round robin picks among the pods it has connected
// to: the pause between calls, -interval, leaves it the time to connect to
// all). Any other gRPC target (dns:///10.199.1.2:50051) calls one address. It ends with a line "N replies from K pods" and fails
// when a call fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/xds" // the xds:/// resolver and its balancers
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// sayHello is the demo app's one method; its request and reply are
// google.protobuf.StringValue.
const sayHello = "/bosun.examples.hello.v1.Hello/SayHello"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "hello-client: %v\n", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	target   string
	calls    int
	interval time.Duration
	timeout  time.Duration
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("hello-client", flag.ContinueOnError)
	fs.IntVar(&c.calls, "n", 6, "number of calls")
	fs.DurationVar(&c.interval, "interval", 100*time.Millisecond, "pause between calls (a fresh channel sends calls only to the pods it has connected to)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "longest wait for all the calls, the first connection included")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hello-client [-n 6] [-interval 100ms] [-timeout 30s] TARGET (e.g. xds:///hello.default:50051)\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() != 1 {
		return c, errors.New("one target is needed, e.g. xds:///hello.default")
	}
	c.target = fs.Arg(0)
	if c.calls < 1 {
		return c, fmt.Errorf("-n %d: at least one call is needed", c.calls)
	}
	if c.interval < 0 {
		return c, fmt.Errorf("-interval %s: must not be negative", c.interval)
	}
	if c.timeout <= 0 {
		return c, fmt.Errorf("-timeout %s: must be positive", c.timeout)
	}
	if strings.HasPrefix(c.target, "xds:") && os.Getenv("GRPC_XDS_BOOTSTRAP") == "" && os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") == "" {
		return c, fmt.Errorf("target %s: set GRPC_XDS_BOOTSTRAP to a bootstrap file (service-proxy bootstrap --node-id ID --format grpc)", c.target)
	}
	return c, nil
}

func run(args []string, out io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(c.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("target %s: %w", c.target, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	pods := map[string]bool{}
	for i := 0; i < c.calls; i++ {
		if i > 0 {
			select {
			case <-time.After(c.interval):
			case <-ctx.Done():
				return fmt.Errorf("after %d calls to %s: %w", i, c.target, ctx.Err())
			}
		}
		reply := new(wrapperspb.StringValue)
		// WaitForReady: the first call waits for the service-proxy's answer
		// and a connection instead of failing at once.
		if err := conn.Invoke(ctx, sayHello, wrapperspb.String("make run"), reply, grpc.WaitForReady(true)); err != nil {
			return fmt.Errorf("call %d to %s: %w", i+1, c.target, err)
		}
		fmt.Fprintln(out, reply.GetValue())
		pods[pod(reply.GetValue())] = true
	}
	fmt.Fprintf(out, "%d replies from %d pods\n", c.calls, len(pods))
	return nil
}

// pod is the host name in a reply "hello from HOST (version V)", else the
// whole reply.
func pod(reply string) string {
	if rest, ok := strings.CutPrefix(reply, "hello from "); ok {
		if host, _, ok := strings.Cut(rest, " "); ok {
			return host
		}
	}
	return reply
}
