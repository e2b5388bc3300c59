//go:build linux

// Command benchtool is baton's side-by-side data-plane benchmark (make
// bench). It is a development tool, not part of the product.
//
//	benchtool origin -listen ADDR       the origin: GET /small (13 bytes),
//	                                    /large (64 KiB), /healthz; POST /post
//	                                    (reads the body, answers its length)
//	benchtool run [flags]               the whole benchmark: starts the origin,
//	                                    baton, HAProxy and Caddy, measures them
//	                                    with wrk in alternating rounds, prints
//	                                    the table
//	benchtool rate -url U [flags]       open-loop load at a fixed rate, prints
//	                                    latency percentiles
//	benchtool idle -addr A -pid P [-n]  opens N idle keep-alive connections to
//	                                    A and prints P's RSS while they are open
//	benchtool ports -n N                prints N free loopback ports
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/batonproxy/baton/internal/freeport"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: benchtool origin|floor|run|rate|idle|ports [flags]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("benchtool "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var err error
	switch args[0] {
	case "origin":
		listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		err = serveOrigin(ctx, *listen, stderr)
	case "floor":
		listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
		tlsListen := fs.String("tls-listen", "", "address for HTTPS (and HTTP/2) with -cert and -key")
		crt := fs.String("cert", "", "certificate (PEM)")
		key := fs.String("key", "", "its key (PEM)")
		backend := fs.String("backend", "", "host:port of the origin")
		if fs.Parse(args[1:]) != nil || *backend == "" {
			return 2
		}
		err = serveFloor(ctx, *listen, *tlsListen, *crt, *key, *backend, stderr)
	case "rate":
		url := fs.String("url", "", "URL to GET")
		rps := fs.Int("rate", 1000, "requests per second")
		dur := fs.Duration("duration", 10*time.Second, "how long")
		conns := fs.Int("conns", 64, "connections (and workers)")
		if fs.Parse(args[1:]) != nil || *url == "" {
			return 2
		}
		var r rateResult
		r, err = rateLoad(ctx, *url, *rps, *dur, *conns)
		if err == nil {
			fmt.Fprintln(stdout, r.summary())
		}
	case "idle":
		addr := fs.String("addr", "", "host:port of the proxy")
		pid := fs.Int("pid", 0, "process whose RSS to report")
		n := fs.Int("n", 1000, "connections")
		if fs.Parse(args[1:]) != nil || *addr == "" || *pid == 0 {
			return 2
		}
		var kb int64
		kb, err = idleRSS(ctx, *addr, *pid, *n, time.Second)
		if err == nil {
			fmt.Fprintf(stdout, "rss_kb=%d conns=%d\n", kb, *n)
		}
	case "ports":
		n := fs.Int("n", 1, "how many")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		var ps []int
		if ps, err = freeport.Ports(*n); err == nil {
			for _, p := range ps {
				fmt.Fprintln(stdout, p)
			}
		}
	case "run":
		var o runOptions
		o.flags(fs)
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		err = runBench(ctx, o, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "benchtool: unknown command %q\n", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "benchtool %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
