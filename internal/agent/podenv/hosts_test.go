package podenv

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The busybox pod from seed 002: hostname busybox-1 under the headless
// service default-subdomain.
func busybox() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busybox1", Namespace: "default", Labels: map[string]string{"name": "busybox"}},
		Spec:       v1.PodSpec{Hostname: "busybox-1", Subdomain: "default-subdomain"},
	}
}

func TestHostname(t *testing.T) {
	long := strings.Repeat("a", 60) + "-.-xyz"
	tests := []struct {
		name          string
		mutate        func(*v1.Pod)
		wantHost      string
		wantFQDN      string
		clusterDomain string
	}{
		{"hostname and subdomain", func(*v1.Pod) {}, "busybox-1", "busybox-1.default-subdomain.default.svc.cluster.local", "cluster.local"},
		{"pod name when no hostname", func(p *v1.Pod) { p.Spec.Hostname = "" }, "busybox1", "busybox1.default-subdomain.default.svc.cluster.local", "cluster.local"},
		{"no subdomain, no fqdn", func(p *v1.Pod) { p.Spec.Subdomain = "" }, "busybox-1", "", "cluster.local"},
		{"long name cut to 63 without trailing - or .", func(p *v1.Pod) { p.Name = long; p.Spec.Hostname = ""; p.Spec.Subdomain = "" },
			strings.Repeat("a", 60), "", "cluster.local"},
		{"override wins and has no fqdn", func(p *v1.Pod) { p.Spec.HostnameOverride = ptr("my.host.example") }, "my.host.example", "", "cluster.local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := busybox()
			tt.mutate(p)
			h, f := Hostname(p, tt.clusterDomain)
			if h != tt.wantHost || f != tt.wantFQDN {
				t.Fatalf("got (%q, %q), want (%q, %q)", h, f, tt.wantHost, tt.wantFQDN)
			}
		})
	}
}

func TestHosts(t *testing.T) {
	const header = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"

	p := busybox()
	h, f := Hostname(p, "cluster.local")
	got := string(Hosts(p, []string{"10.244.1.7", "fd00::7"}, h, f))
	want := header +
		"10.244.1.7\tbusybox-1.default-subdomain.default.svc.cluster.local\tbusybox-1\n" +
		"fd00::7\tbusybox-1.default-subdomain.default.svc.cluster.local\tbusybox-1\n"
	if got != want {
		t.Fatalf("with subdomain got:\n%s\nwant:\n%s", got, want)
	}

	p.Spec.Subdomain = ""
	p.Spec.HostAliases = []v1.HostAlias{
		{IP: "127.0.0.1", Hostnames: []string{"foo.local", "bar.local"}},
		{IP: "10.1.2.3", Hostnames: []string{"foo.remote"}},
	}
	h, f = Hostname(p, "cluster.local")
	got = string(Hosts(p, []string{"10.244.1.7"}, h, f))
	want = header + "10.244.1.7\tbusybox-1\n" +
		"\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\n"
	if got != want {
		t.Fatalf("with aliases got:\n%s\nwant:\n%s", got, want)
	}

	p.Spec.HostNetwork = true
	if got := Hosts(p, []string{"192.168.1.10"}, h, f); got != nil {
		t.Fatalf("hostNetwork pod: got %q, want nil", got)
	}
	node := "127.0.0.1\tlocalhost\n192.168.1.10\tnode-a\n"
	got = string(HostNetworkHosts(p, []byte(node)))
	want = "# Kubernetes-managed hosts file (host network).\n" + node +
		"\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\n"
	if got != want {
		t.Fatalf("host network got:\n%s\nwant:\n%s", got, want)
	}
}
