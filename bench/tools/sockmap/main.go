// Command skmap is an experiment for issue 8: how many HTTP requests/s
// (keep-alive and a new connection each) and how much bulk throughput pass
// a TCP relay whose data path is a BPF sockmap (an sk_skb verdict program
// redirecting each socket's data to its peer's egress), against a Go
// splice relay and against direct, on loopback. Roles run as separate
// processes (run.sh). It is not a proxy: no end-of-stream ordering (a FIN
// read here can overtake data the kernel still holds for the peer), and
// a connection the client closed before both sockets were in the map is
// not relayed ("operation not supported": the kernel takes only
// established sockets), which the new-connection figure shows.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

func main() {
	var err error
	switch os.Args[1] {
	case "backend":
		chunk := make([]byte, 1<<20)
		err = http.ListenAndServe(os.Args[2], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if mb, _ := strconv.Atoi(r.URL.Query().Get("mb")); mb > 0 {
				w.Header().Set("Content-Length", strconv.Itoa(mb<<20))
				for range mb {
					w.Write(chunk)
				}
				return
			}
			io.WriteString(w, "hello from the backend\n")
		}))
	case "splice":
		err = relay(os.Args[2], os.Args[3], nil)
	case "sockmap":
		var sm *sockmap
		if sm, err = newSockmap(); err == nil {
			err = relay(os.Args[2], os.Args[3], sm)
		}
	case "load":
		d, _ := time.ParseDuration(os.Args[3])
		conc, _ := strconv.Atoi(os.Args[4])
		err = load(os.Args[2], d, conc, len(os.Args) > 5 && os.Args[5] == "nc")
	case "bulk":
		mb, _ := strconv.Atoi(os.Args[3])
		err = bulk(os.Args[2], mb)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type sockmap struct {
	m    *ebpf.Map
	prog *ebpf.Program
}

func newSockmap() (*sockmap, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.SockHash, KeySize: 8, ValueSize: 8, MaxEntries: 65536})
	if err != nil {
		return nil, fmt.Errorf("map: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:       ebpf.SkSKB,
		AttachType: ebpf.AttachSkSKBVerdict,
		License:    "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.FnGetSocketCookie.Call(),
			asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.LoadMapPtr(asm.R2, m.FD()),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, -8),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnSkRedirectHash.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("program: %w", err)
	}
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: m.FD(), Program: prog, Attach: ebpf.AttachSkSKBVerdict}); err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	return &sockmap{m: m, prog: prog}, nil
}

func fdOf(c *net.TCPConn) (fd int) {
	rc, _ := c.SyscallConn()
	rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}

func relay(listen, backend string, sm *sockmap) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", backend)
			if err != nil {
				return
			}
			defer s.Close()
			ct, st := c.(*net.TCPConn), s.(*net.TCPConn)
			if sm == nil {
				done := make(chan struct{})
				go func() { st.ReadFrom(ct); st.CloseWrite(); close(done) }()
				ct.ReadFrom(st)
				ct.CloseWrite()
				<-done
				return
			}
			cfd, sfd := fdOf(ct), fdOf(st)
			ck, _ := unix.GetsockoptUint64(cfd, unix.SOL_SOCKET, unix.SO_COOKIE)
			sk, _ := unix.GetsockoptUint64(sfd, unix.SOL_SOCKET, unix.SO_COOKIE)
			// key: the receiving socket's cookie; value: its peer.
			if err := sm.m.Put(ck, uint64(sfd)); err != nil {
				fmt.Fprintln(os.Stderr, "put:", err)
				return
			}
			if err := sm.m.Put(sk, uint64(cfd)); err != nil {
				fmt.Fprintln(os.Stderr, "put:", err)
				return
			}
			// Whatever arrived before the sockets were in the map is
			// still in the client socket's queue: pass it on by hand
			// (the experiment's client waits for each answer, so nothing
			// can overtake it).
			buf := make([]byte, 64<<10)
			ct.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if n, _ := ct.Read(buf); n > 0 {
				st.Write(buf[:n])
			}
			ct.SetReadDeadline(time.Time{})
			// Now the kernel relays; a read returns only at the end.
			for {
				if _, err := ct.Read(buf); err != nil {
					return
				}
			}
		}()
	}
}

func bulk(addr string, mb int) error {
	start := time.Now()
	resp, err := http.Get("http://" + addr + "/?mb=" + strconv.Itoa(mb))
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(mb)<<20 {
		return fmt.Errorf("bulk: %d bytes, %v", n, err)
	}
	fmt.Printf("%s: bulk %.0f MB/s\n", addr, float64(n)/1e6/time.Since(start).Seconds())
	return nil
}

func load(addr string, d time.Duration, conc int, newConn bool) error {
	var n atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	end := time.Now().Add(d)
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			dial := func() bool {
				var err error
				if c, err = net.Dial("tcp", addr); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return false
				}
				br = bufio.NewReader(c)
				return true
			}
			if !dial() {
				return
			}
			defer func() { c.Close() }()
			for time.Now().Before(end) {
				if newConn && n.Load() >= 0 {
					c.Close()
					if !dial() {
						return
					}
				}
				if _, err := c.Write(req); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok && e != nil && !errors.Is(e, io.EOF) {
		fmt.Fprintln(os.Stderr, "load error:", e)
	}
	fmt.Printf("%s: %.0f req/s\n", addr, float64(n.Load())/d.Seconds())
	return nil
}
