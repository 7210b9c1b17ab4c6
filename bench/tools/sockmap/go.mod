// Module sockmap is an experiment for issue 8 (the userspace proxy's
// speed): a TCP relay whose data path is a BPF sockmap, measured beside a
// Go splice relay and direct access in the same run. It is a separate
// module so that github.com/cilium/ebpf never becomes a dependency of the
// product. Run: go build -o skmap . && unshare --net --mount --pid --fork
// --mount-proc --kill-child -- ./run.sh
module github.com/portal-net/portal/bench/tools/sockmap

go 1.25.0

require (
	github.com/cilium/ebpf v0.22.0
	golang.org/x/sys v0.43.0
)
