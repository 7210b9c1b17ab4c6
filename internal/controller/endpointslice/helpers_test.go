package endpointslice

import (
	"fmt"

	discovery "k8s.io/api/discovery/v1"
)

// applyPlan simulates the API server: creates get names, updates replace.
func applyPlan(existing []*discovery.EndpointSlice, p Plan) []*discovery.EndpointSlice {
	byName := map[string]*discovery.EndpointSlice{}
	for _, s := range existing {
		byName[s.Name] = s
	}
	for _, s := range p.Delete {
		delete(byName, s.Name)
	}
	for _, s := range p.Update {
		byName[s.Name] = s
	}
	for i, s := range p.Create {
		s = s.DeepCopy()
		s.Name = fmt.Sprintf("%sgen%d-%d", s.GenerateName, len(byName), i)
		byName[s.Name] = s
	}
	out := make([]*discovery.EndpointSlice, 0, len(byName))
	for _, s := range byName {
		out = append(out, s)
	}
	return out
}
