package storagetest

import (
	"context"
	"strings"
	"testing"
)

func TestFreeURLsAreDistinctLoopback(t *testing.T) {
	urls, err := FreeURLs(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, u := range urls {
		if !strings.HasPrefix(u, "http://127.0.0.1:") || seen[u] {
			t.Errorf("URL %q not a fresh loopback URL (all: %v)", u, urls)
		}
		seen[u] = true
	}
}

func TestStartServes(t *testing.T) {
	b := Start(t)
	if _, err := b.Client().Put(context.Background(), "/k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := b.Healthy(context.Background()); err != nil {
		t.Fatal(err)
	}
}
