package l4

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// BenchmarkTCPThroughput sends bulk data over one loopback connection,
// directly to a sink and through a TCPProxy, 1 MiB per iteration.
func BenchmarkTCPThroughput(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	defer func() { ln.Close(); <-done }()
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// One connection at a time: the benchmark runs sequentially.
			buf := make([]byte, 256<<10)
			var n uint64
			for {
				m, err := c.Read(buf)
				n += uint64(m)
				if err != nil {
					break
				}
			}
			binary.Write(c, binary.BigEndian, n)
			c.Close()
		}
	}()
	sink := addrPortOf(ln.Addr())

	run := func(b *testing.B, addr string) {
		chunk := make([]byte, 1<<20)
		b.SetBytes(int64(len(chunk)))
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		c.(*net.TCPConn).CloseWrite()
		var got uint64
		if err := binary.Read(c, binary.BigEndian, &got); err != nil && err != io.EOF {
			b.Fatal(err)
		}
		b.StopTimer()
		if want := uint64(b.N) * uint64(len(chunk)); got != want {
			b.Fatalf("sink got %d bytes, want %d", got, want)
		}
	}

	b.Run("direct", func(b *testing.B) { run(b, sink.String()) })
	b.Run("proxy", func(b *testing.B) {
		pln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		p, err := NewTCPProxy(pln, TCPConfig{Config: Config{Scheduler: &fakeSched{}}})
		if err != nil {
			b.Fatal(err)
		}
		p.SetBackends(backendsOf(sink))
		served := make(chan error, 1)
		go func() { served <- p.Serve(b.Context()) }()
		defer func() { p.Close(); <-served }()
		run(b, pln.Addr().String())
	})
}
