package apitest

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStartServesTheAPI(t *testing.T) {
	s := Start(t)
	ns, err := s.Client.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Status.Phase != "Active" {
		t.Errorf("default namespace phase %q, want Active", ns.Status.Phase)
	}
}
