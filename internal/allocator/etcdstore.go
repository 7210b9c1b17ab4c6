package allocator

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdStore is the Store on an etcd v3 cluster.
type EtcdStore struct {
	c *clientv3.Client
}

// NewEtcdStore wraps a client; the caller keeps ownership of it.
func NewEtcdStore(c *clientv3.Client) *EtcdStore { return &EtcdStore{c: c} }

var _ Store = (*EtcdStore)(nil)

func (s *EtcdStore) Reserve(ctx context.Context, key string, value []byte) (int64, error) {
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value))).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("reserving %s: %w", key, err)
	}
	if !resp.Succeeded {
		return 0, ErrAllocated
	}
	return resp.Header.Revision, nil
}

func (s *EtcdStore) Release(ctx context.Context, key string, revision int64) error {
	if revision <= 0 {
		if _, err := s.c.Delete(ctx, key); err != nil {
			return fmt.Errorf("releasing %s: %w", key, err)
		}
		return nil
	}
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", revision)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("releasing %s: %w", key, err)
	}
	if !resp.Succeeded {
		return ErrModified
	}
	return nil
}

func (s *EtcdStore) Get(ctx context.Context, key string) (Entry, bool, error) {
	resp, err := s.c.Get(ctx, key)
	if err != nil {
		return Entry{}, false, fmt.Errorf("reading %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return Entry{}, false, nil
	}
	kv := resp.Kvs[0]
	return Entry{Value: kv.Value, Revision: kv.ModRevision}, true, nil
}

func (s *EtcdStore) List(ctx context.Context, prefix string) (map[string]Entry, int64, error) {
	resp, err := s.c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("listing %s: %w", prefix, err)
	}
	out := make(map[string]Entry, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = Entry{Value: kv.Value, Revision: kv.ModRevision}
	}
	return out, resp.Header.Revision, nil
}

func (s *EtcdStore) Watch(ctx context.Context, prefix string, revision int64) <-chan WatchEvent {
	out := make(chan WatchEvent)
	ctx, cancel := context.WithCancel(ctx)
	// Without a leader the watch would hang silently on a partitioned
	// member; requiring one turns that into an error and a re-list.
	wch := s.c.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(revision+1))
	go func() {
		defer close(out)
		defer cancel()
		send := func(ev WatchEvent) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for resp := range wch {
			if err := resp.Err(); err != nil {
				send(WatchEvent{Err: fmt.Errorf("watching %s: %w", prefix, err)})
				return
			}
			for _, e := range resp.Events {
				ev := WatchEvent{Key: string(e.Kv.Key), Revision: e.Kv.ModRevision}
				if e.Type == clientv3.EventTypeDelete {
					ev.Deleted = true
				} else {
					ev.Value = e.Kv.Value
				}
				if !send(ev) {
					return
				}
			}
		}
		if ctx.Err() == nil {
			send(WatchEvent{Err: fmt.Errorf("watching %s: channel closed", prefix)})
		}
	}()
	return out
}
