package speaker

import (
	"bytes"
	"crypto/sha256"
	"net/netip"
	"slices"
)

// Service is what the decision needs of one LoadBalancer Service.
type Service struct {
	Key string // namespace/name
	IPs []netip.Addr
	// LocalOnly is externalTrafficPolicy Local: only nodes in ReadyNodes
	// may announce.
	LocalOnly  bool
	ReadyNodes map[string]bool
}

// Winner returns the candidate announcing ip, or "" when there is none.
func Winner(ip netip.Addr, candidates []string) string {
	var best string
	var bestSum [sha256.Size]byte
	for _, n := range candidates {
		sum := rank(n, ip)
		if best == "" || bytes.Compare(sum[:], bestSum[:]) < 0 || (sum == bestSum && n < best) {
			best, bestSum = n, sum
		}
	}
	return best
}

func rank(node string, ip netip.Addr) [sha256.Size]byte {
	b := make([]byte, 0, len(node)+1+16)
	b = append(b, node...)
	b = append(b, 0)
	b = append(b, ip.Unmap().AsSlice()...)
	return sha256.Sum256(b)
}

// Assign returns the addresses self announces, each with the keys of the
// services (sorted) that made self win it. live are the live nodes,
// excluded the nodes that never announce. An address shared by several
// services is announced by self when self wins it for any of them.
func Assign(self string, live []string, excluded map[string]bool, svcs []Service) map[netip.Addr][]string {
	var base []string
	for _, n := range live {
		if !excluded[n] {
			base = append(base, n)
		}
	}
	if !slices.Contains(base, self) {
		return nil
	}
	out := map[netip.Addr][]string{}
	for _, s := range svcs {
		cands := base
		if s.LocalOnly {
			cands = nil
			for _, n := range base {
				if s.ReadyNodes[n] {
					cands = append(cands, n)
				}
			}
		}
		for _, ip := range s.IPs {
			if Winner(ip, cands) == self && !slices.Contains(out[ip], s.Key) {
				out[ip] = append(out[ip], s.Key)
			}
		}
	}
	for ip := range out {
		slices.Sort(out[ip])
	}
	return out
}
