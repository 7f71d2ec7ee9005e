// Command app is the program inside the node-agent conformance suite's pod
// image, where it is /app and the entrypoint. Its arguments pick a
// behaviour:
//
//	serve PORT   HTTP on PORT (the image's default command, PORT 8080);
//	             SIGTERM or SIGINT end it at once with code 0
//	exit CODE    exits with CODE at once
//
// Served:
//
//	GET  /                  {"hostname": ..., "instance": ...} as JSON; the
//	                        instance is random per process, so a restart shows
//	GET  /env               the environment as a JSON object
//	GET  /ready             200 while ready (from the start), 503 otherwise
//	POST /ready?value=BOOL  makes /ready answer 200 (true) or 503 (false)
//	POST /exit?code=N       answers, then exits with N
//
// It is built statically (CGO_ENABLED=0) so the image needs nothing else.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: app serve PORT | exit CODE")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2])
	case "exit":
		code, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "exit:", err)
			os.Exit(2)
		}
		fmt.Println("exiting with", code)
		os.Exit(code)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

func serve(port string) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; os.Exit(0) }()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	instance := hex.EncodeToString(b)
	host, _ := os.Hostname()
	var ready atomic.Bool
	ready.Store(true)
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, map[string]string{"hostname": host, "instance": instance})
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, _ *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		reply(w, env)
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("POST /ready", func(w http.ResponseWriter, r *http.Request) {
		v, err := strconv.ParseBool(r.URL.Query().Get("value"))
		if err != nil {
			http.Error(w, "value: "+err.Error(), http.StatusBadRequest)
			return
		}
		ready.Store(v)
		fmt.Fprintln(w, "ready", v)
	})
	mux.HandleFunc("POST /exit", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, "code: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "exiting with", code)
		w.(http.Flusher).Flush()
		go func() { time.Sleep(100 * time.Millisecond); os.Exit(code) }()
	})
	fmt.Println("listening on", port)
	if err := http.ListenAndServe(":"+port, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
