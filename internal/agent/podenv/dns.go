package podenv

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Limits the kubelet applies to a pod's resolver configuration; glibc reads
// at most three nameservers, and long search lists break resolvers.
const (
	MaxNameservers     = 3
	MaxSearchDomains   = 32
	MaxSearchListChars = 2048
)

// DNSConfig is the node's DNS setup as the agent was configured with it.
type DNSConfig struct {
	// ClusterDNS are the cluster DNS server addresses for ClusterFirst pods.
	ClusterDNS []string
	// ClusterDomain is the cluster's domain, e.g. "cluster.local".
	ClusterDomain string
	// HostResolvConf is the content of the node's resolv.conf. Nil means the
	// node has none: Default pods then resolve through the local host.
	HostResolvConf []byte
}

// resolverConf is the parsed form of a resolv.conf.
type resolverConf struct {
	nameservers []string
	searches    []string
	options     []string
}

// ResolvConf builds the resolv.conf for pod from its dnsPolicy and dnsConfig:
//
//   - ClusterFirst (and ClusterFirstWithHostNet): the cluster DNS servers,
//     the search path <ns>.svc.<domain> svc.<domain> <domain> followed by
//     the host's search domains, and "options ndots:5". A hostNetwork pod
//     with ClusterFirst gets Default instead; with no cluster DNS configured
//     ClusterFirst also falls back to Default, as the kubelet does.
//   - Default: the host's nameservers, search domains and options.
//   - None: only what spec.dnsConfig gives.
//
// spec.dnsConfig is merged on top: nameservers and searches appended without
// duplicates, options overriding by name. The result is cut to the kubelet's
// limits (3 nameservers, 32 search domains, 2048 characters of search list).
func ResolvConf(pod *v1.Pod, cfg DNSConfig) ([]byte, error) {
	host := parseResolvConf(cfg.HostResolvConf)
	if cfg.HostResolvConf == nil {
		host = resolverConf{nameservers: []string{"127.0.0.1"}, searches: []string{"."}}
	}

	var rc resolverConf
	switch policy(pod) {
	case v1.DNSNone:
		if pod.Spec.DNSConfig == nil || len(pod.Spec.DNSConfig.Nameservers) == 0 {
			return nil, fmt.Errorf("pod %s/%s has dnsPolicy None without dnsConfig.nameservers", pod.Namespace, pod.Name)
		}
	case v1.DNSClusterFirst:
		if len(cfg.ClusterDNS) == 0 {
			rc = host
			break
		}
		parsed := parseResolvConf(cfg.HostResolvConf)
		rc.nameservers = append([]string(nil), cfg.ClusterDNS...)
		rc.searches = clusterSearches(pod.Namespace, cfg.ClusterDomain, parsed.searches)
		rc.options = []string{"ndots:5"}
	default:
		rc = host
	}

	if dc := pod.Spec.DNSConfig; dc != nil {
		rc.nameservers = uniq(append(append([]string(nil), rc.nameservers...), dc.Nameservers...))
		rc.searches = uniq(append(append([]string(nil), rc.searches...), dc.Searches...))
		rc.options = mergeOptions(rc.options, dc.Options)
	}

	if len(rc.nameservers) > MaxNameservers {
		rc.nameservers = rc.nameservers[:MaxNameservers]
	}
	rc.searches = limitSearches(rc.searches)

	var b bytes.Buffer
	if len(rc.searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(rc.searches, " "))
	}
	for _, ns := range rc.nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(rc.options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(rc.options, " "))
	}
	return b.Bytes(), nil
}

// policy returns the effective policy: ClusterFirst for cluster DNS, Default
// for the host's, None for dnsConfig only.
func policy(pod *v1.Pod) v1.DNSPolicy {
	switch pod.Spec.DNSPolicy {
	case v1.DNSNone:
		return v1.DNSNone
	case v1.DNSClusterFirstWithHostNet:
		return v1.DNSClusterFirst
	case v1.DNSDefault:
		return v1.DNSDefault
	default: // ClusterFirst, and unset (the API defaults it to ClusterFirst)
		if pod.Spec.HostNetwork {
			return v1.DNSDefault
		}
		return v1.DNSClusterFirst
	}
}

func clusterSearches(ns, domain string, host []string) []string {
	if domain == "" {
		return uniq(host)
	}
	s := []string{ns + ".svc." + domain, "svc." + domain, domain}
	return uniq(append(s, host...))
}

// parseResolvConf reads nameserver, search (the last line wins, as in libc)
// and options lines; comments start with '#' or ';'.
func parseResolvConf(data []byte) resolverConf {
	var rc resolverConf
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				rc.nameservers = append(rc.nameservers, f[1])
			}
		case "search", "domain":
			rc.searches = nil
			for _, s := range f[1:] {
				if s != "." {
					s = strings.TrimSuffix(s, ".")
				}
				rc.searches = append(rc.searches, s)
			}
		case "options":
			rc.options = mergeOptionStrings(rc.options, f[1:])
		}
	}
	return rc
}

func mergeOptions(base []string, extra []v1.PodDNSConfigOption) []string {
	add := make([]string, 0, len(extra))
	for _, o := range extra {
		s := o.Name
		if o.Value != nil && *o.Value != "" {
			s += ":" + *o.Value
		}
		add = append(add, s)
	}
	return mergeOptionStrings(base, add)
}

// mergeOptionStrings merges resolver options by name (the part before ':'),
// later ones replacing earlier ones in place.
func mergeOptionStrings(base, add []string) []string {
	out := append([]string(nil), base...)
	for _, o := range add {
		name, _, _ := strings.Cut(o, ":")
		replaced := false
		for i, cur := range out {
			if n, _, _ := strings.Cut(cur, ":"); n == name {
				out[i] = o
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}

func limitSearches(s []string) []string {
	if len(s) > MaxSearchDomains {
		s = s[:MaxSearchDomains]
	}
	for len(s) > 0 && len(strings.Join(s, " ")) > MaxSearchListChars {
		s = s[:len(s)-1]
	}
	return s
}

func uniq(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}
