package shimcmd

import (
	"reflect"
	"testing"
)

func TestMainRejectsUnknownSubcommands(t *testing.T) {
	for _, args := range [][]string{nil, {"nosuch"}, {"shim"}, {"shim", "--bogus"}} {
		if code := Main(args); code != 2 {
			t.Errorf("Main(%q) = %d, want 2", args, code)
		}
	}
}

func TestShimArgs(t *testing.T) {
	got := ShimArgs{Dir: "/var/lib/portal/pods/u1", Hostname: "web-0"}.Args()
	want := []string{"shim", "--dir", "/var/lib/portal/pods/u1", "--hostname", "web-0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Args() = %q, want %q", got, want)
	}
	if got := (ShimArgs{Dir: "/d"}).Args(); len(got) != 3 {
		t.Errorf("hostNetwork shim args %q carry a hostname", got)
	}
}
