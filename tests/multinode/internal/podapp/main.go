// Command podapp is the program inside the multi-node tests' pod image:
// `podapp serve PORT` answers "hello from HOSTNAME" over HTTP on PORT and
// exits at once on SIGTERM. It is built statically (CGO_ENABLED=0) so the
// image needs nothing else.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	port := "8080"
	if len(os.Args) > 2 && os.Args[1] == "serve" {
		port = os.Args[2]
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; os.Exit(0) }()
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "hello from %s\n", host) })
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
