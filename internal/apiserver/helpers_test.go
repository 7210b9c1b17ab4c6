package apiserver_test

import (
	"context"
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// discovered returns the resources the server lists for groupVersion, by
// name ("pods", "pods/status").
func discovered(t *testing.T, c kubernetes.Interface, groupVersion string) map[string]metav1.APIResource {
	t.Helper()
	res, err := c.Discovery().ServerResourcesForGroupVersion(groupVersion)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]metav1.APIResource{}
	for _, r := range res.APIResources {
		found[r.Name] = r
	}
	return found
}

// getTable fetches path as the Table kubectl get asks for.
func getTable(ctx context.Context, t *testing.T, c kubernetes.Interface, path string) metav1.Table {
	t.Helper()
	raw, err := c.CoreV1().RESTClient().Get().AbsPath(path).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var tbl metav1.Table
	if err := json.Unmarshal(raw, &tbl); err != nil {
		t.Fatal(err)
	}
	return tbl
}
