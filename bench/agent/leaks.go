package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// leaks counts what pods leave behind when they are gone from the API.
type leaks struct {
	netns, veths, ipam, podDirs, procs, mounts int
}

func (l leaks) total() int { return l.netns + l.veths + l.ipam + l.podDirs + l.procs + l.mounts }

func (l leaks) String() string {
	if l.total() == 0 {
		return "0 leaked"
	}
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{l.netns, "netns files"}, {l.veths, "veths"}, {l.ipam, "IPAM records"}, {l.podDirs, "pod dirs"}, {l.procs, "processes"}, {l.mounts, "mounts"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return strings.Join(parts, ", ")
}

// ipamBookkeeping are the IPAM store's own files, not allocations.
var ipamBookkeeping = map[string]bool{"lock": true, "last_reserved_ip": true, "cidr": true}

// countLeaks looks at the agent's dirs, this network namespace's links,
// /proc and the mount table. The benchmark runs in its own network
// namespace, so every veth here is a pod's.
func (a *agent) countLeaks() (leaks, error) {
	var l leaks
	var errs []error
	var err error
	l.netns, err = countEntries(filepath.Join(a.runDir, "netns"), func(string) bool { return true })
	errs = append(errs, err)
	l.podDirs, err = countEntries(filepath.Join(a.rootDir, "pods"), func(string) bool { return true })
	errs = append(errs, err)
	l.ipam, err = countFiles(filepath.Join(a.rootDir, "network", "ipam"), func(name string) bool { return !ipamBookkeeping[name] })
	errs = append(errs, err)
	links, err := netlink.LinkList()
	errs = append(errs, err)
	for _, k := range links {
		if k.Type() == "veth" {
			l.veths++
		}
	}
	procs, err := readProcs()
	errs = append(errs, err)
	for _, p := range procs {
		if containsArg(p.cmdline, a.rootDir) && !isAgent(p, a.rootDir) {
			l.procs++
		}
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err == nil {
		l.mounts, err = countMounts(mi, a.runDir)
		mi.Close()
	}
	errs = append(errs, err)
	return l, errors.Join(errs...)
}

// countEntries counts the entries of dir that keep says are not
// bookkeeping; a missing dir holds none.
func countEntries(dir string, keep func(name string) bool) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	n := 0
	for _, e := range ents {
		if keep(e.Name()) {
			n++
		}
	}
	return n, err
}

// countFiles counts the regular files below dir that keep accepts.
func countFiles(dir string, keep func(name string) bool) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && keep(d.Name()) {
			n++
		}
		return nil
	})
	return n, err
}

// countMounts counts mountinfo lines whose mount point is dir or below
// it.
func countMounts(mountinfo io.Reader, dir string) (int, error) {
	n := 0
	sc := bufio.NewScanner(mountinfo)
	for sc.Scan() {
		// Field 5 is the mount point (spaces escaped as \040).
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		mp := strings.ReplaceAll(f[4], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			n++
		}
	}
	return n, sc.Err()
}
