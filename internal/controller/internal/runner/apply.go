package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/portal-net/portal/internal/controller/internal/slicepack"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ApplySlices writes a slice plan for owner key: creates before updates
// before deletes, so endpoints moving between slices are never absent from
// all of them. Every write is recorded in tracker.
func ApplySlices(ctx context.Context, client kubernetes.Interface, tracker *Tracker, key string, plan slicepack.Plan) error {
	var errs []error
	for _, s := range plan.Create {
		got, err := client.DiscoveryV1().EndpointSlices(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("create endpointslice for %s: %w", key, err))
			continue
		}
		tracker.Created(key, got.Name)
	}
	for _, s := range plan.Update {
		got, err := client.DiscoveryV1().EndpointSlices(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("update endpointslice %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		tracker.Updated(key, got.Name, s.ResourceVersion, got.ResourceVersion)
	}
	for _, s := range plan.Delete {
		err := client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete endpointslice %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		tracker.Deleted(key, s.Name)
	}
	return errors.Join(errs...)
}
