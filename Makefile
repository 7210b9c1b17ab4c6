# portal — see README.md. `make run` starts the all-in-one cluster,
# `make test` runs the whole suite (as root; packet-moving tests run in a
# fresh network namespace with only loopback).

SHELL        := /bin/bash
GO           ?= go
BIN          := bin
K8S_VERSION  := v1.37.2
PORTAL_VERSION ?= v0.1.0
# kubectl's kustomize can load Go plugins (.so files, an alpha feature);
# linking package plugin exports every symbol of the binary and keeps
# every method, which costs 30 MB of binary and resident code. Off.
TAGS    := kustomize_disable_go_plugin_support
LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=37 \
	-X github.com/portal-net/portal/internal/version.Version=$(PORTAL_VERSION)
# Packages whose code runs goroutines concurrently: tested with -race.
RACE_PKGS := ./internal/allocator/... ./internal/storage/... ./internal/registry/... ./internal/printers/... ./internal/apiserver/... ./internal/controller/... ./internal/controllermanager/... ./internal/scheduler/... ./internal/apitest/... ./internal/agent/... ./internal/podruntime/... ./internal/shimcmd/... ./internal/sys/conntrack/... ./internal/proxy ./internal/proxy/runner ./internal/proxy/healthcheck ./internal/proxy/topologykeys ./internal/proxy/nftables ./internal/proxy/iptables ./internal/dns/... ./internal/feed ./internal/proxy/userspace/... ./internal/lb/... ./internal/controller/loadbalancer ./bench/proxy ./bench/dns

.PHONY: all build run test unit e2e deps vet fmt bench generate clean

all: build

deps:
	@hack/deps.sh

build: deps
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/portal ./cmd/portal
	$(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/portal-shim ./cmd/portal-shim
	ln -sf portal $(BIN)/kubectl

run: build
	$(BIN)/portal up

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race $(RACE_PKGS)
	$(MAKE) fuzz

# A short bounded fuzzing run of the DNS query handling (malformed packets
# must never crash the server); longer: make fuzz FUZZTIME=10m.
FUZZTIME ?= 15s
.PHONY: fuzz
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime $(FUZZTIME) ./internal/dns
	$(GO) test -run '^$$' -fuzz '^FuzzUDP$$' -fuzztime $(FUZZTIME) ./internal/dns
	$(GO) test -run '^$$' -fuzz '^FuzzResolve$$' -fuzztime $(FUZZTIME) ./internal/dns/records

# The e2e binary runs inside `unshare --net`: a new network namespace with
# nothing but loopback, so no test can reach any other address. It also gets
# its own mount and PID namespaces: the namespaces and mounts pods use vanish
# with it, and when it ends the kernel kills every process it left (pod
# supervisors included), even after a crash.
e2e: build
	$(GO) test -c -o $(BIN)/e2e.test ./test/e2e
	cd test/e2e && unshare --net --mount --pid --fork --mount-proc --kill-child -- ../../hack/in-netns.sh ../../$(BIN)/e2e.test -test.count=1 -test.v -test.timeout 20m -portal $(abspath $(BIN)/portal)

test: build vet unit e2e conformance-subset

bench: build
	hack/bench.sh

# Upstream kube-proxy, built from k8s.io/kubernetes in its own module
# (bench/tools/kubeproxy, never a dependency of portal), beside portal's
# proxy in the same run. Flags: make bench-compare BENCH_FLAGS='-services 10000'.
.PHONY: bench-compare
bench-compare: build
	cd bench/tools/kubeproxy && GOFLAGS='-mod=mod -buildvcs=false' $(GO) build \
	  -ldflags '-s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION)' -o ../../../$(BIN)/kube-proxy .
	hack/bench.sh proxy -kube-proxy $(BIN)/kube-proxy $(BENCH_FLAGS)

generate:
	$(GO) run k8s.io/code-generator/cmd/deepcopy-gen@v0.37.2 --output-file zz_generated.deepcopy.go \
	  --go-header-file hack/boilerplate.go.txt ./internal/api/portal/v1
	$(GO) run k8s.io/kube-openapi/cmd/openapi-gen@v0.0.0-20260721132016-d427ff9ee9ad --output-dir internal/apiserver/openapi \
	  --output-pkg github.com/portal-net/portal/internal/apiserver/openapi --output-file zz_generated.openapi.go \
	  --go-header-file hack/boilerplate.go.txt --report-filename /dev/null \
	  ./internal/api/portal/v1 k8s.io/api/core/v1 k8s.io/api/apps/v1 k8s.io/api/discovery/v1 k8s.io/api/coordination/v1 \
	  k8s.io/api/networking/v1 k8s.io/api/autoscaling/v1 k8s.io/api/policy/v1 \
	  k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime \
	  k8s.io/apimachinery/pkg/util/intstr k8s.io/apimachinery/pkg/api/resource k8s.io/apimachinery/pkg/version

clean:
	rm -rf $(BIN)

# Upstream CoreDNS, built from its Go module in its own module
# (bench/tools/coredns, never a dependency of portal), beside portal's
# cluster DNS in the same run. Flags: make bench-dns BENCH_FLAGS='-services 10000'.
.PHONY: bench-dns
bench-dns: build
	hack/deps.sh dnsperf
	cd bench/tools/coredns && GOFLAGS='-mod=mod -buildvcs=false' $(GO) build -ldflags '-s -w' -o ../../../$(BIN)/coredns .
	$(GO) build -o $(BIN)/bench-dns ./bench/dns
	unshare --net --mount --pid --fork --mount-proc --kill-child -- hack/in-netns.sh $(BIN)/bench-dns -portal $(BIN)/portal -coredns $(BIN)/coredns -dnsperf $$(command -v dnsperf) $(BENCH_FLAGS)

# Differential test of portal's cluster DNS against CoreDNS's kubernetes
# plugin (issue 7), on 127.0.0.1 only; CoreDNS built from bench/tools/coredns.
# Not in `make test`: building CoreDNS fetches its many modules.
.PHONY: test-compat
test-compat: build
	cd bench/tools/coredns && GOFLAGS='-mod=mod -buildvcs=false' $(GO) build -ldflags '-s -w' -o ../../../$(BIN)/coredns .
	$(GO) test -count=1 ./test/compat -portal $(abspath $(BIN)/portal) -coredns $(abspath $(BIN)/coredns) $(COMPAT_FLAGS)

# Load-balancer L2 failover (issue 9): portal's agents on three lab nodes
# beside hashicorp/memberlist configured as MetalLB's speaker configures it,
# built in its own module (bench/tools/memberlist, never a dependency of
# portal). Flags: make bench-lb BENCH_FLAGS='-rounds 10'.
.PHONY: bench-lb
bench-lb: build
	cd bench/tools/memberlist && GOFLAGS='-mod=mod -buildvcs=false' $(GO) build -ldflags '-s -w' -o ../../../$(BIN)/memberlist-node .
	hack/bench.sh lb -memberlist $(BIN)/memberlist-node $(BENCH_FLAGS)

# Upstream conformance (issue 10): the Kubernetes e2e test binary, built from
# its Go module in test/conformance (never a dependency of portal), run
# against portal in a lab of network namespaces (hack/conformance.sh).
# Flags: make conformance CONFORMANCE_FLAGS='-focus REGEX -nodes 3'.
.PHONY: conformance kube-e2e-test
kube-e2e-test:
	cd test/conformance && GOFLAGS='-mod=mod -buildvcs=false' $(GO) test -c -o ../../$(BIN)/kube-e2e.test k8s.io/kubernetes/test/e2e

# The short upstream subset of `make test` (issue 10): sig-network's
# EndpointSlice, Endpoints, Services, ServiceCIDR and DNS [Conformance]
# specs, from a smaller e2e binary holding only the network suite
# (test/conformance/subset), in the same lab as `make conformance`.
SUBSET_FOCUS := \[sig-network\] (EndpointSlice|EndpointSliceMirroring|Endpoints|EndpointsController|Services|ServiceCIDR and IPAddress API|DNS) .*\[Conformance\]
.PHONY: conformance-subset
conformance-subset: build
	cd test/conformance && GOFLAGS='-mod=mod -buildvcs=false' $(GO) test -c -o ../../$(BIN)/kube-e2e-subset.test ./subset
	hack/deps.sh dig:bind9-dnsutils nc:netcat-openbsd
	unshare --net --mount --pid --fork --mount-proc --kill-child -- hack/in-netns.sh \
	  hack/conformance.sh -portal $(BIN)/portal -e2e $(BIN)/kube-e2e-subset.test -out _output/conformance-subset \
	  -focus '$(SUBSET_FOCUS)' -timeout 15m

conformance: build kube-e2e-test
	hack/deps.sh dig:bind9-dnsutils nc:netcat-openbsd
	unshare --net --mount --pid --fork --mount-proc --kill-child -- hack/in-netns.sh \
	  hack/conformance.sh -portal $(BIN)/portal -e2e $(BIN)/kube-e2e.test -out _output/conformance $(CONFORMANCE_FLAGS)
