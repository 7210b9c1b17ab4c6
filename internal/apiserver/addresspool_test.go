package apiserver_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
)

// portal.dev/v1 AddressPools are served like built-in kinds: discovery,
// create, 422 with field paths, the status subresource, kubectl columns.
func TestAddressPoolAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	ts := startServer(t)
	ctx := context.Background()
	res, err := ts.client.Discovery().ServerResourcesForGroupVersion("portal.dev/v1")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.APIResources) != 2 || res.APIResources[0].Name != "addresspools" || res.APIResources[0].Namespaced ||
		len(res.APIResources[0].ShortNames) != 1 || res.APIResources[0].ShortNames[0] != "pool" {
		t.Fatalf("discovery: %+v", res.APIResources)
	}
	pools := ts.dyn.Resource(portalv1.SchemeGroupVersion.WithResource("addresspools"))
	toU := func(p *portalv1.AddressPool) *unstructured.Unstructured {
		p.APIVersion, p.Kind = "portal.dev/v1", "AddressPool"
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: m}
	}
	fromU := func(u *unstructured.Unstructured) *portalv1.AddressPool {
		var p portalv1.AddressPool
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}

	_, err = pools.Create(ctx, toU(&portalv1.AddressPool{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: portalv1.AddressPoolSpec{Addresses: []string{"192.0.2.0/28", "192.0.2.1/24"}}}), metav1.CreateOptions{})
	assertInvalidField(t, err, "spec.addresses[1]", "host bits set, did you mean 192.0.2.0/24?")
	_, err = pools.Create(ctx, toU(&portalv1.AddressPool{ObjectMeta: metav1.ObjectMeta{Name: "empty"}}), metav1.CreateOptions{})
	assertInvalidField(t, err, "spec.addresses", "")

	u, err := pools.Create(ctx, toU(&portalv1.AddressPool{ObjectMeta: metav1.ObjectMeta{Name: "blue"},
		Spec: portalv1.AddressPoolSpec{Addresses: []string{"192.0.2.0/28"}}}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := fromU(u)
	if p.Generation != 1 || p.Namespace != "" {
		t.Errorf("created pool: generation %d namespace %q", p.Generation, p.Namespace)
	}
	// Status is written through /status only.
	p.Status = portalv1.AddressPoolStatus{Assigned: 1, AvailableIPv4: 13}
	if _, err := pools.Update(ctx, toU(p), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	u, _ = pools.Get(ctx, "blue", metav1.GetOptions{})
	if fromU(u).Status.Assigned != 0 {
		t.Error("the main endpoint wrote status")
	}
	p = fromU(u)
	p.Status = portalv1.AddressPoolStatus{Assigned: 1, AvailableIPv4: 13}
	u, err = pools.UpdateStatus(ctx, toU(p), metav1.UpdateOptions{})
	if err != nil || fromU(u).Status.AvailableIPv4 != 13 {
		t.Fatalf("status update: %v", err)
	}
	p = fromU(u)
	p.Status.Assigned = -1
	_, err = pools.UpdateStatus(ctx, toU(p), metav1.UpdateOptions{})
	assertInvalidField(t, err, "status.assigned", "")

	tbl := getTable(ctx, t, ts.client, "/apis/portal.dev/v1/addresspools")
	if len(tbl.Rows) != 1 || tbl.Rows[0].Cells[0] != "blue" || tbl.Rows[0].Cells[1] != "192.0.2.0/28" || tbl.Rows[0].Cells[4] != "13" || tbl.Rows[0].Cells[3] != float64(1) {
		t.Errorf("table rows: %+v", tbl.Rows)
	}
}
