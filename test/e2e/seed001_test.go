package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The commands of seed 001, as a user types them.
func TestSeed001Commands(t *testing.T) {
	s := startServer(t)

	out := s.mustKubectl("create", "-f", seed("001-services.yaml"))
	for _, want := range []string{"service/mysql-service created", "service/example-app created"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}

	table := s.mustKubectl("get", "svc")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if got := strings.Join(fields(lines[0]), " "); got != "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE" {
		t.Errorf("header %q", got)
	}
	k := row(table, "kubernetes")
	if len(k) != 6 || k[1] != "ClusterIP" || k[2] != "10.0.0.1" || k[3] != "<none>" || k[4] != "443/TCP" {
		t.Errorf("kubernetes row %v", k)
	}
	m := row(table, "mysql-service")
	if len(m) != 6 || m[1] != "ClusterIP" || m[4] != "3306/TCP" {
		t.Errorf("mysql-service row %v", m)
	}
	e := row(table, "example-app")
	portsRE := regexp.MustCompile(`^3000:(\d+)/TCP$`)
	if len(e) != 6 || e[1] != "NodePort" || !portsRE.MatchString(e[4]) {
		t.Fatalf("example-app row %v", e)
	}
	tablePort := portsRE.FindStringSubmatch(e[4])[1]

	np := s.mustKubectl("get", "svc", "example-app", "-o", "jsonpath={.spec.ports[0].nodePort}")
	n, err := strconv.Atoi(np)
	if err != nil || n < 30000 || n > 32767 || np != tablePort {
		t.Errorf("jsonpath nodePort %q (table says %s)", np, tablePort)
	}

	wide := s.mustKubectl("get", "svc", "-o", "wide")
	if !strings.Contains(strings.Split(wide, "\n")[0], "SELECTOR") || row(wide, "example-app")[6] != "app=example-app" {
		t.Errorf("-o wide:\n%s", wide)
	}
	desc := s.mustKubectl("describe", "svc", "example-app")
	for _, want := range []string{"Name:", "example-app", "NodePort:", "3000/TCP"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}
	if out := s.mustKubectl("explain", "service.spec"); !strings.Contains(out, "clusterIP") || !strings.Contains(out, "topologyKeys") {
		t.Errorf("explain service.spec:\n%s", out)
	}
	if out := s.mustKubectl("version"); !strings.Contains(out, "Server Version: v1.37.2") {
		t.Errorf("version:\n%s", out)
	}
	// Short names and the all category.
	if out := s.mustKubectl("get", "all"); row(out, "service/example-app") == nil {
		t.Errorf("get all:\n%s", out)
	}
	// Editing by patch keeps the allocated nodePort.
	s.mustKubectl("patch", "svc", "example-app", "-p", `{"metadata":{"labels":{"tier":"web"}}}`)
	if again := s.mustKubectl("get", "svc", "example-app", "-o", "jsonpath={.spec.ports[0].nodePort}"); again != np {
		t.Errorf("nodePort changed by a label patch: %s -> %s", np, again)
	}
	// Re-applying the manifest (no nodePort in it) keeps it too.
	s.mustKubectl("apply", "-f", seed("001-services.yaml"))
	if again := s.mustKubectl("get", "svc", "example-app", "-o", "jsonpath={.spec.ports[0].nodePort}"); again != np {
		t.Errorf("nodePort changed by apply: %s -> %s", np, again)
	}
	// Asking for a taken nodePort is refused with Kubernetes' wording.
	clash := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"clash"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":` + np + `}]}}`
	_, errOut, err := s.kubectlIn(clash, "create", "-f", "-")
	if err == nil || !strings.Contains(errOut, "spec.ports[0].nodePort") || !strings.Contains(errOut, "provided port is already allocated") {
		t.Errorf("nodePort clash: err=%v %s", err, errOut)
	}
}
