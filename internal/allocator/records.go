package allocator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
)

// Owner names the Service an allocation belongs to.
type Owner struct {
	Namespace string
	Name      string
}

func (o Owner) String() string { return o.Namespace + "/" + o.Name }

// ManagedBy is the IPAddress managed-by label value for Service ClusterIPs,
// the one Kubernetes' own allocator uses, so tools that filter on it see
// portal's allocations as Kubernetes ones.
const ManagedBy = "ipallocator.k8s.io"

// DefaultPrefix is the API server's default etcd prefix.
const DefaultPrefix = "/registry"

// Key layout: IPAddress objects where the API server stores that resource
// (cluster-scoped: <prefix>/<resource>/<name>), node ports in a key space of
// portal's own.
func ipKeyPrefix(prefix string) string {
	return strings.TrimRight(prefix, "/") + "/networking.k8s.io/ipaddresses/"
}

func portKeyPrefix(prefix string) string {
	return strings.TrimRight(prefix, "/") + "/portal.dev/nodeports/"
}

// record is what the allocators and repair need from a stored value.
type record struct {
	owner   Owner
	created time.Time
	// foreign: the value is not a Service allocation made by this package
	// (another parent kind, another manager, or unparsable). Foreign keys
	// still occupy their value but repair leaves them alone.
	foreign bool
}

// encodeIPAddress renders the IPAddress object for ip owned by o exactly
// as the API server's JSON storage codec would write it (json.Encoder, so
// with a trailing newline), so the API server reads it back as its own.
func encodeIPAddress(ip netip.Addr, o Owner, now time.Time, uid types.UID) ([]byte, error) {
	family := "IPv4"
	if ip.Is6() {
		family = "IPv6"
	}
	obj := networkingv1.IPAddress{
		TypeMeta: metav1.TypeMeta{Kind: "IPAddress", APIVersion: networkingv1.SchemeGroupVersion.String()},
		ObjectMeta: metav1.ObjectMeta{
			Name:              ip.String(),
			UID:               uid,
			CreationTimestamp: metav1.NewTime(now),
			Labels: map[string]string{
				networkingv1.LabelIPAddressFamily: family,
				networkingv1.LabelManagedBy:       ManagedBy,
			},
		},
		Spec: networkingv1.IPAddressSpec{
			ParentRef: &networkingv1.ParentReference{
				Group:     "",
				Resource:  "services",
				Namespace: o.Namespace,
				Name:      o.Name,
			},
		},
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(&obj); err != nil {
		return nil, fmt.Errorf("encoding IPAddress %s: %w", ip, err)
	}
	return buf.Bytes(), nil
}

func decodeIPAddress(value []byte) record {
	var obj networkingv1.IPAddress
	if err := json.Unmarshal(value, &obj); err != nil || obj.Kind != "IPAddress" {
		return record{foreign: true}
	}
	r := record{created: obj.CreationTimestamp.Time}
	p := obj.Spec.ParentRef
	if p == nil || p.Group != "" || p.Resource != "services" || obj.Labels[networkingv1.LabelManagedBy] != ManagedBy {
		r.foreign = true
		return r
	}
	r.owner = Owner{Namespace: p.Namespace, Name: p.Name}
	return r
}

// nodePortValue is the JSON stored for a node port.
type nodePortValue struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
}

func encodeNodePort(o Owner, now time.Time) ([]byte, error) {
	b, err := json.Marshal(nodePortValue{Namespace: o.Namespace, Name: o.Name, Created: now.UTC()})
	if err != nil {
		return nil, fmt.Errorf("encoding node port owner: %w", err)
	}
	return b, nil
}

func decodeNodePort(value []byte) record {
	var v nodePortValue
	if err := json.Unmarshal(value, &v); err != nil || v.Name == "" {
		return record{foreign: true}
	}
	return record{owner: Owner{Namespace: v.Namespace, Name: v.Name}, created: v.Created}
}

// parseIPName reads the object name of an IPAddress key: the canonical
// textual form of the address. Non-canonical names are not ours.
func parseIPName(name string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(name)
	if err != nil || a.String() != name || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

func parsePortName(name string) (int, bool) {
	p, err := strconv.Atoi(name)
	if err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != name {
		return 0, false
	}
	return p, true
}

func newUID() types.UID { return uuid.NewUUID() }
