package podenv

import (
	"bytes"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// hostnameMaxLen is the longest hostname the kernel accepts (64 bytes with
// the terminating NUL).
const hostnameMaxLen = 63

// Hostname returns the pod's hostname and, when spec.subdomain is set, its
// fully qualified name <hostname>.<subdomain>.<ns>.svc.<clusterDomain>
// (else ""). The hostname is spec.hostnameOverride, else spec.hostname, else
// the pod name, cut to 63 characters without a trailing '-' or '.'.
// An override has no FQDN, as in the kubelet.
func Hostname(pod *v1.Pod, clusterDomain string) (hostname, fqdn string) {
	if o := pod.Spec.HostnameOverride; o != nil && *o != "" {
		return truncateHostname(*o), ""
	}
	hostname = pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	hostname = truncateHostname(hostname)
	if pod.Spec.Subdomain != "" {
		domain := pod.Spec.Subdomain + "." + pod.Namespace + ".svc"
		if clusterDomain != "" {
			domain += "." + clusterDomain
		}
		fqdn = hostname + "." + domain
	}
	return hostname, fqdn
}

func truncateHostname(h string) string {
	if len(h) <= hostnameMaxLen {
		return h
	}
	return strings.TrimRight(h[:hostnameMaxLen], "-.")
}

// Hosts returns the kubelet-managed /etc/hosts for a pod on the pod network:
// the localhost and IPv6 entries, one line per pod IP naming the FQDN (when
// there is one) and the hostname, and then the spec.hostAliases entries.
// It returns nil for hostNetwork pods, which see the node's own /etc/hosts
// (see HostNetworkHosts).
func Hosts(pod *v1.Pod, podIPs []string, hostname, fqdn string) []byte {
	if pod.Spec.HostNetwork {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	for _, ip := range podIPs {
		if fqdn != "" {
			fmt.Fprintf(&b, "%s\t%s\t%s\n", ip, fqdn, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	b.Write(HostAliases(pod.Spec.HostAliases))
	return b.Bytes()
}

// HostNetworkHosts returns the /etc/hosts of a hostNetwork pod: the node's
// own hosts file under a header saying so, then the spec.hostAliases entries.
func HostNetworkHosts(pod *v1.Pod, nodeHosts []byte) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file (host network).\n")
	b.Write(nodeHosts)
	b.Write(HostAliases(pod.Spec.HostAliases))
	return b.Bytes()
}

// HostAliases renders spec.hostAliases as a hosts-file section, one line per
// IP.
func HostAliases(aliases []v1.HostAlias) []byte {
	if len(aliases) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.Bytes()
}
