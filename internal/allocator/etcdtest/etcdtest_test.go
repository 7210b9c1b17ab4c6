package etcdtest

import (
	"context"
	"testing"
	"time"
)

func TestStartPutGet(t *testing.T) {
	cli, eps := Start(t)
	if len(eps) != 1 {
		t.Fatalf("endpoints = %v, want one", eps)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, "/k")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get = %v, want v", resp.Kvs)
	}
}
