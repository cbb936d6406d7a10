// Command appserver is the app that the rollout tests deploy. Unlike
// busybox httpd it keeps connections alive, as real apps behind HAProxy
// do, so HAProxy reuses its connections to it.
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	version := func() string {
		b, err := os.ReadFile("/www/index.html")
		if err != nil {
			return "unknown\n"
		}
		return string(b)
	}
	// Every path answers any method: the load generator posts, because Go's
	// client silently retries a GET that fails on a reused connection,
	// which would hide exactly the failures the tests count.
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(version()))
	})
	// slow answers after 100 ms, so requests are in flight at every switch.
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		_, _ = w.Write([]byte(version()))
	})
	// api fails with 500 in a release that has /www/fail-api.
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat("/www/fail-api"); err == nil {
			http.Error(w, "broken release", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(version()))
	})

	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
