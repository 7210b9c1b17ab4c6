package memtrim

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyRegions(t *testing.T) {
	smaps := `00400000-00c00000 r-xp 00000000 fe:00 1234 /usr/bin/portal
Size:               8192 kB
Rss:                4096 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
00c00000-01800000 r--p 00800000 fe:00 1234 /usr/bin/portal
Rss:                1024 kB
Anonymous:             0 kB
01800000-01801000 r--p 01400000 fe:00 1234 /usr/bin/portal
Rss:                   4 kB
Anonymous:             4 kB
01801000-01900000 rw-p 01401000 fe:00 1234 /usr/bin/portal
Anonymous:            12 kB
01900000-01a00000 rw-p 00000000 00:00 0
Anonymous:          1024 kB
7f0000000000-7f0000100000 r--p 00000000 fe:00 99 /usr/lib/other.so
Anonymous:             0 kB
7f0000200000-7f0000300000 r--s 00000000 fe:00 1234 /usr/bin/portal
Anonymous:             0 kB
7f0000300000-7f0000400000 r-xp 00000000 fe:00 77 /opt/my tools/portal
Anonymous:             0 kB
7f0000400000-7f0000500000 r-xp 00000000 fe:00 1234 /usr/bin/portal (deleted)
Anonymous:             0 kB
`
	got, err := readOnlyRegions([]byte(smaps), "/usr/bin/portal")
	if err != nil {
		t.Fatal(err)
	}
	// Text and read-only data of the binary: not its relocated read-only
	// segment (private pages: the loader wrote them), not its writable
	// data, not a shared mapping, not other files, not a replaced binary.
	want := []region{{0x400000, 0xc00000}, {0xc00000, 0x1800000}}
	if !slices.Equal(got, want) {
		t.Errorf("got %x, want %x", got, want)
	}
	got, err = readOnlyRegions([]byte(smaps), "/opt/my tools/portal")
	if err != nil || !slices.Equal(got, []region{{0x7f0000300000, 0x7f0000400000}}) {
		t.Errorf("a path with a space: %x, %v", got, err)
	}
	if _, err := readOnlyRegions([]byte("zz-yy r-xp 0 fe:00 1 /usr/bin/portal\n"), "/usr/bin/portal"); err == nil {
		t.Error("a malformed line was accepted")
	}
}

// residentKB sums the Rss of this binary's read-only mappings.
func residentKB(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, counting := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 6 && strings.Contains(fields[0], "-"):
			counting = strings.Join(fields[5:], " ") == exe && fields[1][1] != 'w'
		case counting && fields[0] == "Rss:":
			kb, _ := strconv.Atoi(fields[1])
			sum += kb
		}
	}
	return sum
}

func TestUnmapText(t *testing.T) {
	before := residentKB(t)
	n, err := UnmapText()
	if err != nil {
		t.Fatal(err)
	}
	after := residentKB(t)
	t.Logf("covered %d KiB; resident read-only pages of the test binary %d → %d KiB", n/1024, before, after)
	if n == 0 || after >= before {
		t.Errorf("UnmapText covered %d bytes; resident %d → %d KiB, want fewer", n, before, after)
	}
	// The code keeps running: pages fault back in.
	if got := strings.Repeat("ab", 3); got != "ababab" {
		t.Fatal(got)
	}
	if again := residentKB(t); again == 0 {
		t.Error("nothing resident after running again")
	}
}
