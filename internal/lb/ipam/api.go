package ipam

import (
	"encoding/binary"
	"math"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
)

// PoolFromAPI turns an AddressPool object into a Pool. The errors name the
// fields (spec.addresses[1], spec.serviceSelector...), so the API server
// validates with it and the controller never sees a pool it could not use.
func PoolFromAPI(obj *portalv1.AddressPool) (Pool, field.ErrorList) {
	spec := field.NewPath("spec")
	p := Pool{Name: obj.Name, AutoAssign: obj.Spec.AutoAssign, IncludeNetworkBroadcast: obj.Spec.IncludeNetworkBroadcast}
	var errs field.ErrorList
	addrs := spec.Child("addresses")
	if len(obj.Spec.Addresses) == 0 {
		errs = append(errs, field.Required(addrs, "a pool needs at least one CIDR or first-last range"))
	}
	for i, s := range obj.Spec.Addresses {
		r, err := ParseRange(s)
		if err != nil {
			errs = append(errs, field.Invalid(addrs.Index(i), s, err.Error()))
			continue
		}
		for j, o := range p.Ranges {
			if o.First.Is4() == r.First.Is4() && !r.Last.Less(o.First) && !o.Last.Less(r.First) {
				errs = append(errs, field.Invalid(addrs.Index(i), s, "overlaps "+obj.Spec.Addresses[j]))
			}
		}
		p.Ranges = append(p.Ranges, r)
	}
	var err field.ErrorList
	p.NamespaceSelector, err = selector(obj.Spec.NamespaceSelector, spec.Child("namespaceSelector"))
	errs = append(errs, err...)
	p.ServiceSelector, err = selector(obj.Spec.ServiceSelector, spec.Child("serviceSelector"))
	errs = append(errs, err...)
	return p, errs
}

// selector converts an optional label selector; absent means everything.
func selector(ls *metav1.LabelSelector, path *field.Path) (labels.Selector, field.ErrorList) {
	if ls == nil {
		return nil, nil
	}
	errs := metav1validation.ValidateLabelSelector(ls, metav1validation.LabelSelectorValidationOptions{}, path)
	if len(errs) > 0 {
		return nil, errs
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(path, ls, err.Error())}
	}
	return sel, nil
}

// Usage is how much of a pool is in use, for the AddressPool status.
type Usage struct {
	// Assigned counts the pool's addresses held by at least one Service.
	Assigned int64
	// Available4 and Available6 count the addresses still free (held-back
	// network and broadcast addresses excluded), saturating at MaxInt64.
	Available4, Available6 int64
}

// Usage reports the named pool's usage; ok is false for an unknown pool.
// An address in two overlapping pools counts against the pool its
// holders got it from.
func (a *Allocator) Usage(pool string) (u Usage, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.byName[pool]
	if p == nil {
		return Usage{}, false
	}
	var held4, held6 int64
	for ip, holders := range a.held {
		if len(holders) == 0 {
			continue
		}
		if h := a.svcs[holders[0]]; h == nil || !slices.ContainsFunc(h.addrs, func(ad Address) bool { return ad.IP == ip && ad.Pool == pool }) {
			continue
		}
		u.Assigned++
		if ip.Is4() {
			held4++
		} else {
			held6++
		}
	}
	for _, r := range p.Ranges {
		n := rangeSize(r)
		if !p.IncludeNetworkBroadcast && r.prefix.IsValid() && r.First.Is4() && r.prefix.Bits() < 31 {
			n -= 2
		}
		if r.First.Is4() {
			u.Available4 = addSat(u.Available4, n)
		} else {
			u.Available6 = addSat(u.Available6, n)
		}
	}
	u.Available4 -= min(held4, u.Available4)
	if u.Available6 != math.MaxInt64 {
		u.Available6 -= min(held6, u.Available6)
	}
	return u, true
}

// rangeSize is Last-First+1, saturating at MaxInt64.
func rangeSize(r Range) int64 {
	f, l := r.First.As16(), r.Last.As16()
	fhi, flo := binary.BigEndian.Uint64(f[:8]), binary.BigEndian.Uint64(f[8:])
	lhi, llo := binary.BigEndian.Uint64(l[:8]), binary.BigEndian.Uint64(l[8:])
	hi := lhi - fhi
	lo := llo - flo
	if llo < flo {
		hi--
	}
	if hi != 0 || lo >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo) + 1
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
