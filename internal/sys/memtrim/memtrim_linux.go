package memtrim

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// UnmapText marks the executable's read-only private mappings not to be
// mapped with huge pages and drops their current page-table entries. It
// skips any mapping holding a private (anonymous) page: the dynamic
// loader writes the relocations of a read-only-after-relocation segment
// (RELRO, the GOT of a cgo binary) before it makes it read-only, and
// dropping those pages would revert them to the file's contents. It
// returns the bytes of address space it covered.
func UnmapText() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	regions, err := readOnlyRegions(smaps, exe)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, r := range regions {
		// NOHUGEPAGE first: a fault between the two calls must not map a
		// huge page again. Both only change how the pages are mapped: the
		// region's pages are all the file's, so nothing is lost when they
		// are unmapped.
		for _, advice := range []uintptr{unix.MADV_NOHUGEPAGE, unix.MADV_DONTNEED} {
			if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, advice); errno != 0 {
				return total, fmt.Errorf("madvise %#x-%#x: %w", r.start, r.end, errno)
			}
		}
		total += int(r.end - r.start)
	}
	return total, nil
}

type region struct{ start, end uintptr }

// readOnlyRegions returns, from a /proc/PID/smaps listing, the private,
// not writable mappings of path without any anonymous page. Each mapping
// is a header line ("start-end perms offset dev inode path") followed by
// "Field: value" lines.
func readOnlyRegions(smaps []byte, path string) ([]region, error) {
	var out []region
	var cur *region // the candidate whose fields are being read
	anon := false
	flush := func() {
		if cur != nil && !anon {
			out = append(out, *cur)
		}
		cur, anon = nil, false
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 0 {
			continue
		}
		if !bytes.HasSuffix(f[0], []byte(":")) { // a mapping's header
			flush()
			if len(f) < 6 || string(bytes.Join(f[5:], []byte(" "))) != path {
				continue
			}
			perms := f[1]
			if len(perms) != 4 || perms[1] == 'w' || perms[3] != 'p' {
				continue
			}
			lo, hi, ok := bytes.Cut(f[0], []byte("-"))
			if !ok {
				return nil, fmt.Errorf("smaps line %q", sc.Text())
			}
			start, err1 := strconv.ParseUint(string(lo), 16, 64)
			end, err2 := strconv.ParseUint(string(hi), 16, 64)
			if err1 != nil || err2 != nil || end <= start {
				return nil, fmt.Errorf("smaps line %q", sc.Text())
			}
			cur = &region{uintptr(start), uintptr(end)}
			continue
		}
		if cur != nil && string(f[0]) == "Anonymous:" && (len(f) < 2 || string(f[1]) != "0") {
			anon = true
		}
	}
	flush()
	return out, sc.Err()
}
