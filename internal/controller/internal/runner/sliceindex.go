package runner

import (
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

const sliceServiceIndex = "portal.dev/slice-service"

// SliceIndex finds a Service's EndpointSlices through an index on the
// kubernetes.io/service-name label, instead of a label-selector scan of
// every slice in the namespace on each sync.
type SliceIndex struct{ slices cache.Indexer }

// MustSliceIndex adds the index to f's EndpointSlice informer (once) and
// returns a view over it; it panics only if f was already started.
func MustSliceIndex(f informers.SharedInformerFactory) *SliceIndex {
	inf := f.Discovery().V1().EndpointSlices().Informer()
	if err := ensureIndex(inf, sliceServiceIndex, sliceServiceKeys); err != nil {
		panic(err)
	}
	return &SliceIndex{slices: inf.GetIndexer()}
}

func sliceServiceKeys(obj interface{}) ([]string, error) {
	s, ok := obj.(*discovery.EndpointSlice)
	if !ok || s.Labels[discovery.LabelServiceName] == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + s.Labels[discovery.LabelServiceName]}, nil
}

// Of returns the slices of Service ns/name managed by managedBy.
func (x *SliceIndex) Of(ns, name, managedBy string) ([]*discovery.EndpointSlice, error) {
	objs, err := x.slices.ByIndex(sliceServiceIndex, ns+"/"+name)
	if err != nil {
		return nil, err
	}
	out := make([]*discovery.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*discovery.EndpointSlice); ok && s.Labels[discovery.LabelManagedBy] == managedBy {
			out = append(out, s)
		}
	}
	return out, nil
}
