package podenv

import (
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func svc(ns, name, ip string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.ServiceSpec{ClusterIP: ip, Ports: ports},
	}
}

func envLines(vars []v1.EnvVar) string {
	var b strings.Builder
	for _, e := range vars {
		b.WriteString(e.Name + "=" + e.Value + "\n")
	}
	return b.String()
}

// The example from the Kubernetes docs (seed 000): a service redis-master
// with cluster IP 10.0.0.11 exposing TCP 6379.
func TestServiceEnvRedisMasterExample(t *testing.T) {
	got := envLines(ServiceEnv([]*v1.Service{
		svc("default", "redis-master", "10.0.0.11", v1.ServicePort{Port: 6379, Protocol: v1.ProtocolTCP}),
	}))
	want := `REDIS_MASTER_SERVICE_HOST=10.0.0.11
REDIS_MASTER_SERVICE_PORT=6379
REDIS_MASTER_PORT=tcp://10.0.0.11:6379
REDIS_MASTER_PORT_6379_TCP=tcp://10.0.0.11:6379
REDIS_MASTER_PORT_6379_TCP_PROTO=tcp
REDIS_MASTER_PORT_6379_TCP_PORT=6379
REDIS_MASTER_PORT_6379_TCP_ADDR=10.0.0.11
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestServiceEnv(t *testing.T) {
	tests := []struct {
		name     string
		services []*v1.Service
		want     string
	}{
		{
			name: "named ports, UDP, default protocol, sorted by service name",
			services: []*v1.Service{
				svc("ns", "web-app", "10.0.0.20",
					v1.ServicePort{Name: "http", Port: 80},
					v1.ServicePort{Name: "dns-udp", Port: 53, Protocol: v1.ProtocolUDP}),
				svc("default", "kubernetes", "10.0.0.1", v1.ServicePort{Name: "https", Port: 443, Protocol: v1.ProtocolTCP}),
			},
			want: `KUBERNETES_SERVICE_HOST=10.0.0.1
KUBERNETES_SERVICE_PORT=443
KUBERNETES_SERVICE_PORT_HTTPS=443
KUBERNETES_PORT=tcp://10.0.0.1:443
KUBERNETES_PORT_443_TCP=tcp://10.0.0.1:443
KUBERNETES_PORT_443_TCP_PROTO=tcp
KUBERNETES_PORT_443_TCP_PORT=443
KUBERNETES_PORT_443_TCP_ADDR=10.0.0.1
WEB_APP_SERVICE_HOST=10.0.0.20
WEB_APP_SERVICE_PORT=80
WEB_APP_SERVICE_PORT_HTTP=80
WEB_APP_SERVICE_PORT_DNS_UDP=53
WEB_APP_PORT=tcp://10.0.0.20:80
WEB_APP_PORT_80_TCP=tcp://10.0.0.20:80
WEB_APP_PORT_80_TCP_PROTO=tcp
WEB_APP_PORT_80_TCP_PORT=80
WEB_APP_PORT_80_TCP_ADDR=10.0.0.20
WEB_APP_PORT_53_UDP=udp://10.0.0.20:53
WEB_APP_PORT_53_UDP_PROTO=udp
WEB_APP_PORT_53_UDP_PORT=53
WEB_APP_PORT_53_UDP_ADDR=10.0.0.20
`,
		},
		{
			name: "IPv6 cluster IP is bracketed in URLs",
			services: []*v1.Service{
				svc("ns", "v6", "fd00::10", v1.ServicePort{Port: 8080, Protocol: v1.ProtocolSCTP}),
			},
			want: `V6_SERVICE_HOST=fd00::10
V6_SERVICE_PORT=8080
V6_PORT=sctp://[fd00::10]:8080
V6_PORT_8080_SCTP=sctp://[fd00::10]:8080
V6_PORT_8080_SCTP_PROTO=sctp
V6_PORT_8080_SCTP_PORT=8080
V6_PORT_8080_SCTP_ADDR=fd00::10
`,
		},
		{
			name: "headless, ExternalName and port-less services give nothing",
			services: []*v1.Service{
				svc("ns", "headless", v1.ClusterIPNone, v1.ServicePort{Port: 1234}),
				svc("ns", "empty", "", v1.ServicePort{Port: 1234}),
				{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ext"}, Spec: v1.ServiceSpec{Type: v1.ServiceTypeExternalName, ExternalName: "example.com", ClusterIP: "10.0.0.9"}},
				svc("ns", "noports", "10.0.0.5"),
			},
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := envLines(ServiceEnv(tt.services)); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestServices(t *testing.T) {
	port := v1.ServicePort{Port: 80}
	k8s := svc("default", "kubernetes", "10.0.0.1", port)
	defWeb := svc("default", "web", "10.0.0.2", port)
	nsWeb := svc("team", "web", "10.0.1.2", port)
	nsDB := svc("team", "db", "10.0.1.3", port)
	nsK8s := svc("team", "kubernetes", "10.0.1.1", port)
	headless := svc("team", "hl", v1.ClusterIPNone, port)
	other := svc("elsewhere", "x", "10.0.2.1", port)

	names := func(s []*v1.Service) []string {
		var out []string
		for _, x := range s {
			out = append(out, x.Namespace+"/"+x.Name)
		}
		return out
	}
	tests := []struct {
		name   string
		all    []*v1.Service
		ns     string
		links  bool
		expect []string
	}{
		{"links on: own namespace plus master, sorted", []*v1.Service{other, nsWeb, headless, k8s, nsDB, defWeb}, "team", true,
			[]string{"team/db", "default/kubernetes", "team/web"}},
		{"links off: master only", []*v1.Service{nsWeb, k8s, nsDB}, "team", false, []string{"default/kubernetes"}},
		{"own namespace shadows default's kubernetes (either order)", []*v1.Service{nsK8s, k8s}, "team", true, []string{"team/kubernetes"}},
		{"own namespace shadows default's kubernetes (other order)", []*v1.Service{k8s, nsK8s}, "team", true, []string{"team/kubernetes"}},
		{"links off ignores own kubernetes", []*v1.Service{nsK8s, k8s}, "team", false, []string{"default/kubernetes"}},
		{"pod in default with links", []*v1.Service{k8s, defWeb, nsWeb}, "default", true, []string{"default/kubernetes", "default/web"}},
		{"pod in default without links", []*v1.Service{k8s, defWeb}, "default", false, []string{"default/kubernetes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(Services(tt.all, tt.ns, tt.links)); !reflect.DeepEqual(got, tt.expect) {
				t.Fatalf("got %v, want %v", got, tt.expect)
			}
		})
	}
}
