package nodeipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/portal-net/portal/internal/controller/internal/runner"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// Defaults, as portal's (k3s-like) cluster network uses them.
const (
	DefaultClusterCIDR      = "10.42.0.0/16"
	DefaultNodeMaskSize     = 24
	DefaultNodeMaskSizeIPv6 = 64
)

// Event reasons, as upstream's range allocator records them.
const (
	ReasonCIDRNotAvailable     = "CIDRNotAvailable"
	ReasonCIDRAssignmentFailed = "CIDRAssignmentFailed"
)

// Options tunes the controller; zero values mean the defaults above.
type Options struct {
	// ClusterCIDR is the pod network; two comma-separated CIDRs of
	// different families make nodes dual-stack.
	ClusterCIDR string
	// NodeMaskSize is the prefix length of an IPv4 node block.
	NodeMaskSize int
	// NodeMaskSizeIPv6 is the prefix length of an IPv6 node block.
	NodeMaskSizeIPv6 int
}

func (o Options) withDefaults() Options {
	if o.ClusterCIDR == "" {
		o.ClusterCIDR = DefaultClusterCIDR
	}
	if o.NodeMaskSize == 0 {
		o.NodeMaskSize = DefaultNodeMaskSize
	}
	if o.NodeMaskSizeIPv6 == 0 {
		o.NodeMaskSizeIPv6 = DefaultNodeMaskSizeIPv6
	}
	return o
}

// Validate reports options the controller cannot run with, so callers can
// reject them while parsing configuration.
func (o Options) Validate() error {
	_, err := newSets(o.withDefaults())
	return err
}

func newSets(o Options) ([]*CIDRSet, error) {
	parts := strings.Split(o.ClusterCIDR, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("cluster CIDR %q: at most one CIDR per IP family", o.ClusterCIDR)
	}
	var sets []*CIDRSet
	for _, p := range parts {
		_, cidr, err := net.ParseCIDR(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("cluster CIDR %q: %w", o.ClusterCIDR, err)
		}
		mask := o.NodeMaskSize
		if cidr.IP.To4() == nil {
			mask = o.NodeMaskSizeIPv6
		}
		s, err := NewCIDRSet(cidr, mask)
		if err != nil {
			return nil, fmt.Errorf("cluster CIDR %s: %w", cidr, err)
		}
		sets = append(sets, s)
	}
	if len(sets) == 2 && (sets[0].bits == sets[1].bits) {
		return nil, fmt.Errorf("cluster CIDR %q: two CIDRs must be of different IP families", o.ClusterCIDR)
	}
	return sets, nil
}

// Controller assigns pod CIDRs to nodes.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	nodes    corelisters.NodeLister
	synced   cache.InformerSynced
	loop     *runner.Loop
	err      error

	mu   sync.Mutex
	sets []*CIDRSet
	// held is what each node holds, by name: blocks read from the node or
	// handed out but perhaps not yet visible in the cache, so a resync of
	// the same node re-sends them instead of allocating again.
	held map[string][]*net.IPNet
	// waiting are nodes that found the range full; a release retries them.
	waiting map[string]bool
}

// New registers informer handlers on f; the caller starts f. Invalid
// options are reported by Run (and by Options.Validate).
func New(client kubernetes.Interface, f informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) *Controller {
	nodeInf := f.Core().V1().Nodes()
	sets, err := newSets(opts.withDefaults())
	c := &Controller{
		client:   client,
		recorder: recorder,
		nodes:    nodeInf.Lister(),
		synced:   nodeInf.Informer().HasSynced,
		err:      err,
		sets:     sets,
		held:     map[string][]*net.IPNet{},
		waiting:  map[string]bool{},
	}
	c.loop = &runner.Loop{
		Name:   "nodeipam",
		Queue:  runner.NewQueue("nodeipam"),
		Synced: []cache.InformerSynced{c.synced},
		Sync:   c.sync,
	}
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.loop.Enqueue,
		UpdateFunc: func(old, obj interface{}) {
			o, ok1 := old.(*v1.Node)
			n, ok2 := obj.(*v1.Node)
			if ok1 && ok2 && len(n.Spec.PodCIDRs) > 0 && slices.Equal(o.Spec.PodCIDRs, n.Spec.PodCIDRs) {
				return // heartbeats of an allocated node change nothing here
			}
			c.loop.Enqueue(obj)
		},
		DeleteFunc: c.loop.Enqueue,
	})
	return c
}

// Run assigns CIDRs until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	logger := klog.FromContext(ctx).WithValues("controller", "nodeipam")
	if c.err != nil {
		logger.Error(c.err, "Node IPAM controller cannot run")
		<-ctx.Done()
		return
	}
	if !cache.WaitForNamedCacheSync("nodeipam", ctx.Done(), c.synced) {
		return
	}
	// Every node's existing blocks are marked before any allocation, so a
	// restart can never hand an existing block to a new node.
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		logger.Error(err, "Listing nodes")
	}
	c.mu.Lock()
	for _, n := range nodes {
		c.occupyLocked(klog.NewContext(ctx, logger), n)
	}
	c.mu.Unlock()
	c.loop.Run(ctx, workers)
}

// occupyLocked records the blocks node already carries.
func (c *Controller) occupyLocked(ctx context.Context, node *v1.Node) {
	var blocks []*net.IPNet
	for _, s := range podCIDRs(node) {
		_, cidr, err := net.ParseCIDR(s)
		if err != nil {
			continue // validation keeps this out of the API
		}
		blocks = append(blocks, cidr)
		for _, set := range c.sets {
			if set.bits != bitsOf(cidr) {
				continue
			}
			if err := set.Occupy(cidr); err != nil {
				klog.FromContext(ctx).Info("Node pod CIDR is outside the cluster CIDR; not tracked", "node", node.Name, "podCIDR", s, "err", err)
			}
		}
	}
	// Blocks we handed out that the node did not take (someone else set
	// its CIDR first) go back to the pool.
	for _, old := range c.held[node.Name] {
		if !slices.ContainsFunc(blocks, func(b *net.IPNet) bool { return b.String() == old.String() }) {
			c.releaseBlockLocked(old)
		}
	}
	c.held[node.Name] = blocks
	delete(c.waiting, node.Name)
}

func (c *Controller) releaseBlockLocked(b *net.IPNet) {
	for _, set := range c.sets {
		if set.bits == bitsOf(b) {
			_ = set.Release(b) // out-of-range blocks were never tracked
		}
	}
}

func (c *Controller) sync(ctx context.Context, name string) error {
	logger := klog.FromContext(ctx).WithValues("node", name)
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.release(name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", name, err)
	}
	c.mu.Lock()
	if len(podCIDRs(node)) > 0 {
		c.occupyLocked(ctx, node)
		c.mu.Unlock()
		return nil
	}
	blocks := c.held[name]
	if blocks == nil {
		blocks, err = c.allocateLocked()
		if errors.Is(err, ErrRangeFull) {
			c.waiting[name] = true
			c.mu.Unlock()
			logger.Info("No pod CIDR available for node", "clusterCIDR", c.clusterString())
			c.recorder.Eventf(node, v1.EventTypeNormal, ReasonCIDRNotAvailable, "Node %s status is now: %s", name, ReasonCIDRNotAvailable)
			return nil // retried when a node releases its block
		}
		c.held[name] = blocks
	}
	c.mu.Unlock()

	cidrs := make([]string, len(blocks))
	for i, b := range blocks {
		cidrs[i] = b.String()
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": cidrs[0], "podCIDRs": cidrs}})
	if err != nil {
		return fmt.Errorf("pod CIDR patch for node %s: %w", name, err)
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.release(name)
		return nil
	case err != nil:
		// Kept in held: the retry sends the same blocks.
		c.recorder.Eventf(node, v1.EventTypeWarning, ReasonCIDRAssignmentFailed, "Node %s: failed to assign pod CIDRs %v: %v", name, cidrs, err)
		return fmt.Errorf("assign pod CIDRs %v to node %s: %w", cidrs, name, err)
	}
	logger.V(2).Info("Assigned pod CIDRs", "podCIDRs", cidrs)
	return nil
}

// allocateLocked takes one block per cluster CIDR, all or none.
func (c *Controller) allocateLocked() ([]*net.IPNet, error) {
	var blocks []*net.IPNet
	for _, set := range c.sets {
		b, err := set.AllocateNext()
		if err != nil {
			for _, got := range blocks {
				c.releaseBlockLocked(got)
			}
			return nil, fmt.Errorf("cluster CIDR %s: %w", set.Cluster(), err)
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// release returns a deleted node's blocks and retries nodes that waited
// for room.
func (c *Controller) release(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	blocks, ok := c.held[name]
	delete(c.held, name)
	delete(c.waiting, name)
	if !ok {
		return
	}
	for _, b := range blocks {
		c.releaseBlockLocked(b)
	}
	for w := range c.waiting {
		c.loop.Queue.Add(w)
	}
}

func (c *Controller) clusterString() string {
	var s []string
	for _, set := range c.sets {
		s = append(s, set.Cluster().String())
	}
	return strings.Join(s, ",")
}

func podCIDRs(n *v1.Node) []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

func bitsOf(n *net.IPNet) int {
	_, bits := n.Mask.Size()
	return bits
}
