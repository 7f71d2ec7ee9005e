// Command hello is Bosun's demo app: a tiny web server on :5000 that answers
// every request with its version and the host name it runs on (in Bosun, the
// pod's name), and /healthz for the readiness probe.
//
//	hello [-listen :5000]
//
// The version is stamped at build time with
// -ldflags "-X main.version=v2"; `devregistry` builds v1 and v2 images of it
// for rolling-update demos. It uses only the standard library so that it
// builds as a static binary with CGO_ENABLED=0 and nothing else in its image.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

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
		fmt.Fprintf(w, "hello from %s (version %s)\n", host, version)
	})
	return mux
}

func main() {
	listen := flag.String("listen", ":5000", "address to listen on")
	flag.Parse()
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	srv := &http.Server{Addr: *listen, Handler: handler(host), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("hello %s listening on %s as %s", version, *listen, host)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
