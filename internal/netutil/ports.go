// Package netutil holds small network helpers: free loopback ports for
// tests and benchmarks, debug handlers only on loopback.
package netutil

import "net"

// FreeLoopbackPorts returns n TCP ports on 127.0.0.1 that were free a
// moment ago (all held open together, so they are distinct).
func FreeLoopbackPorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
