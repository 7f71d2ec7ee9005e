// Command testapp is the program inside the node-agent's test images. Its
// first argument picks a behaviour:
//
//	serve PORT          HTTP on PORT: / answers "hello from HOSTNAME",
//	                    /healthz 200, /ready 200 while /tmp/ready exists
//	                    (else 503), /env the environment, /get?url= fetches URL
//	crash SECONDS CODE  exits with CODE after SECONDS
//	hog                 allocates memory until killed
//	term SECONDS        on SIGTERM logs "got SIGTERM" and exits 0 after SECONDS
//	                    (a negative value ignores SIGTERM)
//	log                 prints "line N" every 100 ms
//	id                  prints uid and gid, then sleeps
//	touch PATH          creates PATH; exits 1 if it cannot
//	rm PATH             removes PATH; exits 1 if it cannot
//
// It is built statically (CGO_ENABLED=0) so the image needs nothing else.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testapp serve|crash|hog|term|log|id|touch|rm ...")
		os.Exit(2)
	}
	arg := func(i int, def string) string {
		if len(os.Args) > i {
			return os.Args[i]
		}
		return def
	}
	switch os.Args[1] {
	case "serve":
		serve(arg(2, "8080"))
	case "crash":
		s, _ := strconv.ParseFloat(arg(2, "0"), 64)
		code, _ := strconv.Atoi(arg(3, "1"))
		time.Sleep(time.Duration(s * float64(time.Second)))
		fmt.Println("crashing with", code)
		os.Exit(code)
	case "hog":
		var hold [][]byte
		for {
			b := make([]byte, 4<<20)
			for i := range b {
				b[i] = byte(i)
			}
			hold = append(hold, b)
			time.Sleep(5 * time.Millisecond)
		}
	case "term":
		s, _ := strconv.ParseFloat(arg(2, "0"), 64)
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("waiting for SIGTERM")
		<-ch
		fmt.Println("got SIGTERM")
		if s < 0 {
			sleepForever()
		}
		time.Sleep(time.Duration(s * float64(time.Second)))
		os.Exit(0)
	case "log":
		for i := 1; ; i++ {
			fmt.Println("line", i)
			time.Sleep(100 * time.Millisecond)
		}
	case "id":
		fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
		sleepForever()
	case "touch":
		if err := os.WriteFile(arg(2, "/x"), []byte("x"), 0o644); err != nil {
			fmt.Println("touch failed:", err)
			os.Exit(1)
		}
		fmt.Println("touch ok")
	case "rm":
		if err := os.Remove(arg(2, "/x")); err != nil {
			fmt.Println("rm failed:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

func serve(port string) {
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "hello from %s\n", host) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := os.Stat("/tmp/ready"); err != nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, _ *http.Request) {
		env := os.Environ()
		sort.Strings(env)
		for _, e := range env {
			fmt.Fprintln(w, e)
		}
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	})
	fmt.Println("listening on", port)
	if err := http.ListenAndServe(":"+port, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// sleepForever blocks without tripping the runtime's deadlock detector.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}
