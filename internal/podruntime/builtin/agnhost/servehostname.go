package agnhost

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

type serveHostnameConfig struct {
	port            int
	tcp, udp, http  bool
	closeConnection bool
}

// serveHostname answers every request with the hostname, over HTTP (the
// default), raw TCP (hostname then close) and/or UDP (one datagram back).
func serveHostname(ctx context.Context, e env, args []string) int {
	var cfg serveHostnameConfig
	fs := flag.NewFlagSet("serve-hostname", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.IntVar(&cfg.port, "port", 9376, "Port number.")
	fs.BoolVar(&cfg.tcp, "tcp", false, "Serve raw over TCP.")
	fs.BoolVar(&cfg.udp, "udp", false, "Serve raw over UDP.")
	fs.BoolVar(&cfg.http, "http", true, "Serve in HTTP mode.")
	fs.BoolVar(&cfg.closeConnection, "close", false, "Close connection per each HTTP request.")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if cfg.tcp && cfg.http {
		fmt.Fprintln(e.stderr, "Error: serve-hostname: can't serve TCP and HTTP on the same port (set --http=false)")
		return 1
	}
	if !cfg.tcp && !cfg.udp && !cfg.http {
		fmt.Fprintln(e.stderr, "Error: serve-hostname: nothing to serve: set --tcp, --udp or --http")
		return 1
	}
	logger := log.New(e.stdout, "", log.LstdFlags)
	hostname := e.host()
	addr := fmt.Sprintf(":%d", cfg.port)

	var (
		ln  net.Listener
		pc  net.PacketConn
		err error
	)
	if cfg.tcp || cfg.http {
		ln, err = e.listen("tcp", addr)
	}
	if err == nil && cfg.udp {
		pc, err = e.listenPacket("udp", addr)
	}
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		fmt.Fprintf(e.stderr, "Error: serve-hostname: %v\n", err)
		return 1
	}

	var wg sync.WaitGroup
	var srv *http.Server
	switch {
	case cfg.http:
		srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			logger.Printf("%s %s from %s", r.Method, r.URL, r.RemoteAddr)
			if cfg.closeConnection {
				w.Header().Set("Connection", "close")
			}
			fmt.Fprint(w, hostname)
		})}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				logger.Printf("HTTP server failed: %v", err)
			}
		}()
	case cfg.tcp:
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				logger.Printf("TCP request from %s", c.RemoteAddr())
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				c.Write([]byte(hostname))
				c.Close()
			}
		}()
	}
	if pc != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1024)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				logger.Printf("UDP request from %s", from)
				pc.WriteTo([]byte(hostname), from)
			}
		}()
	}
	logger.Printf("Serving on port %d.", cfg.port)

	<-ctx.Done()
	logger.Printf("Received SIGTERM, exiting")
	if srv != nil {
		shutdown(srv, 5*time.Second)
	} else if ln != nil {
		ln.Close()
	}
	if pc != nil {
		pc.Close()
	}
	wg.Wait()
	return 0
}
