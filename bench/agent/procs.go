package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// proc is one entry of /proc: enough to find a pod's process tree.
type proc struct {
	pid, ppid int
	cmdline   []string
}

// readProcs lists the processes visible in /proc. Processes that exit
// while it reads are skipped.
func readProcs() ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		ppid, err := parseStatPPID(string(stat))
		if err != nil {
			continue
		}
		cl, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, proc{pid: pid, ppid: ppid, cmdline: strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")})
	}
	return out, nil
}

// parseStatPPID returns field 4 (ppid) of a /proc/PID/stat line.
func parseStatPPID(stat string) (int, error) {
	// The command name may hold spaces and parentheses; fields are counted
	// from its last closing parenthesis.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat line")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, errors.New("short stat line")
	}
	return strconv.Atoi(f[1])
}

// containsArg says whether any argument mentions s.
func containsArg(cmdline []string, s string) bool {
	for _, a := range cmdline {
		if strings.Contains(a, s) {
			return true
		}
	}
	return false
}

// podTree splits the processes of the pods under podsDir into their
// supervisors (the shims, whose command line names their pod dir) and
// containers (every descendant of a supervisor).
func podTree(procs []proc, podsDir string) (supervisors, containers []int) {
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	prefix := podsDir + string(filepath.Separator)
	isShim := func(p proc) bool {
		for i, a := range p.cmdline {
			if a == "--dir" && i+1 < len(p.cmdline) && strings.HasPrefix(p.cmdline[i+1], prefix) {
				return true
			}
		}
		return false
	}
	for _, p := range procs {
		if !isShim(p) {
			continue
		}
		supervisors = append(supervisors, p.pid)
		stack := append([]int(nil), children[p.pid]...)
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			containers = append(containers, c)
			stack = append(stack, children[c]...)
		}
	}
	return supervisors, containers
}

// mem is a process's resident memory in kB: RSS counts every page it
// maps, PSS divides shared pages among their sharers (so PSS sums to the
// memory the processes really take together).
type mem struct{ rss, pss int64 }

func (m mem) add(o mem) mem { return mem{m.rss + o.rss, m.pss + o.pss} }

// readMem reads /proc/PID/smaps_rollup.
func readMem(pid int) (mem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return mem{}, err
	}
	return parseSmapsRollup(string(b))
}

func parseSmapsRollup(s string) (mem, error) {
	var m mem
	var seen int
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[2] != "kB" || (f[0] != "Rss:" && f[0] != "Pss:") {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return mem{}, fmt.Errorf("smaps_rollup %q: %w", sc.Text(), err)
		}
		if f[0] == "Rss:" {
			m.rss = v
		} else {
			m.pss = v
		}
		seen++
	}
	if seen != 2 {
		return mem{}, errors.New("smaps_rollup without Rss and Pss lines")
	}
	return m, nil
}

// sumMem adds up the memory of pids, skipping any that exited.
func sumMem(pids []int) mem {
	var total mem
	for _, pid := range pids {
		if m, err := readMem(pid); err == nil {
			total = total.add(m)
		}
	}
	return total
}
