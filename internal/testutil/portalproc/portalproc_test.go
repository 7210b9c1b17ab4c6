package portalproc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name, status string
		want         int64
		wantErr      string
	}{
		{name: "typical", status: "Name:\tportal\nVmPeak:\t  900000 kB\nVmRSS:\t  117412 kB\nRssAnon:\t 1 kB\n", want: 117412},
		{name: "missing", status: "Name:\tportal\n", wantErr: "no VmRSS line"},
		{name: "odd unit", status: "VmRSS:\t 12 MB\n", wantErr: `unexpected VmRSS line "VmRSS:\t 12 MB"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVmRSS(tt.status)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "VmRSS:\t  117412 kB\nRssAnon:\t   80000 kB\nRssFile:\t   37412 kB\n"
	for field, want := range map[string]int64{"VmRSS": 117412, "RssAnon": 80000, "RssFile": 37412} {
		if got, err := ParseStatusKB(status, field); err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", field, got, err, want)
		}
	}
	if _, err := ParseStatusKB(status, "RssShmem"); err == nil || !strings.Contains(err.Error(), "no RssShmem line") {
		t.Errorf("missing field: %v", err)
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 150 and 50 ticks; the name holds
	// a space and a parenthesis.
	stat := "4242 (portal (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 12 0 100 0 0"
	got, err := ParseStatCPU(stat)
	if err != nil || got != 2*time.Second {
		t.Fatalf("got %v, %v; want 2s", got, err)
	}
	if _, err := ParseStatCPU("garbage"); err == nil {
		t.Error("malformed line accepted")
	}
}

// A file just written is in the page cache; afterwards none of it is.
func TestDropPageCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(path, bytes.Repeat([]byte("portal"), 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	resident := func() int {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatal(errno)
		}
		n := 0
		for _, v := range vec {
			n += int(v & 1)
		}
		return n
	}
	if resident() == 0 {
		t.Skip("the file system keeps nothing in the page cache after a write")
	}
	if err := DropPageCache(path); err != nil {
		t.Fatal(err)
	}
	if n := resident(); n != 0 {
		t.Errorf("%d pages still cached after DropPageCache", n)
	}
}
