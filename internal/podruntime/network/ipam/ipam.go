package ipam

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

const (
	lockFile     = "lock"
	lastFile     = "last_reserved_ip"
	cidrFile     = "cidr"
	tmpPrefix    = ".tmp-"
	maxIDLen     = 253
	minHostBits  = 2 // network, gateway, one pod, broadcast
	filePerm     = 0o644
	dirPerm      = 0o755
	hugeRangeLog = 62
)

var (
	// ErrExhausted is returned (wrapped) when every address of the CIDR
	// is taken.
	ErrExhausted = errors.New("no free address")
	// ErrCIDRChanged is returned (wrapped) by Open when the directory holds
	// allocations for a different CIDR.
	ErrCIDRChanged = errors.New("ipam directory belongs to a different CIDR")
	// ErrInvalidID is returned (wrapped) for ids that cannot be stored.
	ErrInvalidID = errors.New("invalid id")
)

// Store is the allocation state of one CIDR in one directory. It is safe
// for concurrent use, also by several processes sharing the directory.
type Store struct {
	dir    string
	prefix netip.Prefix
	// first and last are the usable range: the network address, the
	// gateway (first host) and the broadcast address are outside it.
	first, last netip.Addr
	size        uint64 // number of usable addresses, capped

	mu   sync.Mutex // flock does not exclude goroutines sharing lock
	lock *os.File
}

// Open loads (or creates) the state for cidr in dir. A directory recorded
// for another CIDR is taken over only if it holds no allocation.
func Open(dir string, cidr *net.IPNet) (*Store, error) {
	if cidr == nil {
		return nil, errors.New("ipam: nil cidr")
	}
	prefix, err := toPrefix(cidr)
	if err != nil {
		return nil, err
	}
	hostBits := prefix.Addr().BitLen() - prefix.Bits()
	if hostBits < minHostBits {
		return nil, fmt.Errorf("ipam: cidr %s is too small: needs at least /%d", prefix, prefix.Addr().BitLen()-minHostBits)
	}
	s := &Store{dir: dir, prefix: prefix}
	s.first = prefix.Addr().Next().Next()
	s.last = lastAddr(prefix).Prev()
	if hostBits >= hugeRangeLog {
		s.size = 1 << hugeRangeLog
	} else {
		s.size = (uint64(1) << hostBits) - 3
	}

	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	s.lock, err = os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("ipam: open lock: %w", err)
	}
	err = s.locked(func() error { return s.checkCIDR() })
	if err != nil {
		s.lock.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the lock file descriptor. The state stays on disk.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// CIDR returns the range the store allocates from.
func (s *Store) CIDR() *net.IPNet {
	return &net.IPNet{IP: net.IP(s.prefix.Addr().AsSlice()), Mask: net.CIDRMask(s.prefix.Bits(), s.prefix.Addr().BitLen())}
}

// Gateway returns the first host address, reserved for the node's bridge.
func (s *Store) Gateway() net.IP { return net.IP(s.prefix.Addr().Next().AsSlice()) }

func (s *Store) checkCIDR() error {
	path := filepath.Join(s.dir, cidrFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("ipam: %w", err)
	default:
		recorded := strings.TrimSpace(string(b))
		if recorded == s.prefix.String() {
			return nil
		}
		all, err := s.scanAll(false)
		if err != nil {
			return err
		}
		if len(all) > 0 {
			return fmt.Errorf("ipam: %s: recorded cidr %s holds %d allocations, refusing to switch to %s: %w",
				s.dir, recorded, len(all), s.prefix, ErrCIDRChanged)
		}
		// Nothing allocated: forget where the old range stopped.
		if err := os.Remove(filepath.Join(s.dir, lastFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ipam: %w", err)
		}
	}
	return writeAtomic(s.dir, cidrFile, s.prefix.String()+"\n")
}

// Allocate returns the address of id, reserving a new one if id has none.
func (s *Store) Allocate(id string) (net.IP, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var ip net.IP
	err := s.locked(func() error {
		all, err := s.scan()
		if err != nil {
			return err
		}
		byIP := make(map[netip.Addr]bool, len(all))
		for a, owner := range all {
			if owner == id {
				ip = net.IP(a.AsSlice())
				return nil
			}
			byIP[a] = true
		}
		if uint64(len(byIP)) >= s.size {
			return fmt.Errorf("ipam: %s: all %d addresses in use: %w", s.prefix, s.size, ErrExhausted)
		}
		start := s.next(s.lastReserved())
		a := start
		for byIP[a] {
			a = s.next(a)
			if a == start {
				return fmt.Errorf("ipam: %s: all addresses in use: %w", s.prefix, ErrExhausted)
			}
		}
		if err := createExclusive(s.dir, a.String(), id); err != nil {
			return err
		}
		if err := writeAtomic(s.dir, lastFile, a.String()+"\n"); err != nil {
			_ = os.Remove(filepath.Join(s.dir, a.String()))
			return err
		}
		ip = net.IP(a.AsSlice())
		return nil
	})
	return ip, err
}

// Release frees every address held by id. Unknown ids are not an error.
func (s *Store) Release(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	return s.locked(func() error {
		all, err := s.scan()
		if err != nil {
			return err
		}
		for a, owner := range all {
			if owner != id {
				continue
			}
			if err := os.Remove(filepath.Join(s.dir, a.String())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("ipam: release %s: %w", a, err)
			}
		}
		return nil
	})
}

// Get returns the address held by id, if any.
func (s *Store) Get(id string) (net.IP, bool) {
	var ip net.IP
	_ = s.locked(func() error {
		all, err := s.scan()
		if err != nil {
			return err
		}
		for a, owner := range all {
			if owner == id {
				ip = net.IP(a.AsSlice())
				return nil
			}
		}
		return nil
	})
	return ip, ip != nil
}

// List returns every allocation by owner id.
func (s *Store) List() (map[string]net.IP, error) {
	out := map[string]net.IP{}
	err := s.locked(func() error {
		all, err := s.scan()
		if err != nil {
			return err
		}
		for a, owner := range all {
			out[owner] = net.IP(a.AsSlice())
		}
		return nil
	})
	return out, err
}

// locked runs fn holding both the in-process mutex and the flock.
func (s *Store) locked(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return errors.New("ipam: store is closed")
	}
	if err := flock(s.lock); err != nil {
		return fmt.Errorf("ipam: lock %s: %w", s.dir, err)
	}
	defer funlock(s.lock)
	return fn()
}

// scan reads the allocation files inside the range. Files for addresses
// outside it (or that are not addresses at all) are ignored.
func (s *Store) scan() (map[netip.Addr]string, error) { return s.scanAll(true) }

func (s *Store) scanAll(inPrefix bool) (map[netip.Addr]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	out := map[netip.Addr]string{}
	for _, e := range entries {
		a, err := netip.ParseAddr(e.Name())
		if err != nil || !e.Type().IsRegular() || (inPrefix && !s.prefix.Contains(a)) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ipam: %w", err)
		}
		out[a] = strings.TrimSpace(string(b))
	}
	return out, nil
}

// lastReserved is the last address handed out, or the one just before
// the range when there is none (or it is not in the range).
func (s *Store) lastReserved() netip.Addr {
	b, err := os.ReadFile(filepath.Join(s.dir, lastFile))
	if err == nil {
		a, err := netip.ParseAddr(strings.TrimSpace(string(b)))
		if err == nil && s.inRange(a) {
			return a
		}
	}
	return s.last
}

func (s *Store) inRange(a netip.Addr) bool {
	return a.BitLen() == s.first.BitLen() && a.Compare(s.first) >= 0 && a.Compare(s.last) <= 0
}

// next is the address after a in the usable range, wrapping around.
func (s *Store) next(a netip.Addr) netip.Addr {
	if a == s.last || !s.inRange(a) {
		return s.first
	}
	return a.Next()
}

func validID(id string) error {
	if id == "" || len(id) > maxIDLen || strings.ContainsAny(id, "\x00\n\r") || strings.TrimSpace(id) != id {
		return fmt.Errorf("ipam: %q: %w", id, ErrInvalidID)
	}
	return nil
}

func toPrefix(n *net.IPNet) (netip.Prefix, error) {
	ip := n.IP
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("ipam: invalid cidr %s", n)
	}
	ones, bits := n.Mask.Size()
	if bits != a.BitLen() {
		return netip.Prefix{}, fmt.Errorf("ipam: invalid cidr %s: mask does not fit address", n)
	}
	return netip.PrefixFrom(a, ones).Masked(), nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// writeAtomic replaces dir/name with content so that readers (and a crash)
// see either the old or the new file, never a partial one.
func writeAtomic(dir, name, content string) error {
	tmp, err := writeTemp(dir, content)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("ipam: %w", err)
	}
	return nil
}

// createExclusive is writeAtomic that fails if dir/name exists: link(2)
// never replaces its target.
func createExclusive(dir, name, content string) error {
	tmp, err := writeTemp(dir, content)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("ipam: reserve %s: %w", name, err)
	}
	return nil
}

func writeTemp(dir, content string) (string, error) {
	f, err := os.CreateTemp(dir, tmpPrefix)
	if err != nil {
		return "", fmt.Errorf("ipam: %w", err)
	}
	// No fsync: the page cache outlives a crash of the agent, and a crash
	// of the machine takes every pod namespace (and so every use of the
	// addresses) with it. It cost more than the rest of an Add.
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), filePerm)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("ipam: write %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}
