package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// controllerManager is a `portal controller-manager` child serving its
// workqueue metrics on loopback.
type controllerManager struct {
	portalproc.Process
	kubeconfig string
	metrics    string
}

// start execs the controller manager and returns the time until its
// metrics endpoint answers.
func (c *controllerManager) start(ctx context.Context, limit time.Duration) (time.Duration, error) {
	t0 := time.Now()
	if err := c.Process.Start("controller-manager", "--kubeconfig", c.kubeconfig, "--leader-elect=false",
		"--controller-metrics-bind-address", c.metrics); err != nil {
		return 0, err
	}
	for time.Since(t0) < limit {
		select {
		case <-c.Exited():
			return 0, fmt.Errorf("controller manager exited:\n%s", portalproc.LastLines(c.Log.String(), 20))
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		if _, err := c.scrape(ctx); err == nil {
			return time.Since(t0), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("controller manager not serving metrics within %s", limit)
}

// scrape returns the controller manager's metrics as "name{labels}" → value.
func (c *controllerManager) scrape(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.metrics+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads Prometheus text exposition into "name{labels}" → value.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// queueState is one controller's workqueue figures.
type queueState struct{ adds, depth, unfinished float64 }

func queue(m map[string]float64, name string) queueState {
	l := `{name="` + name + `"}`
	return queueState{adds: m["workqueue_adds_total"+l], depth: m["workqueue_depth"+l], unfinished: m["workqueue_unfinished_work_seconds"+l]}
}

// settled waits until the named queues have seen at least minAdds adds each
// and are empty with no work in progress, twice in a row 100 ms apart.
func (c *controllerManager) settled(ctx context.Context, limit time.Duration, minAdds float64, names ...string) error {
	deadline := time.Now().Add(limit)
	calm := 0
	for time.Now().Before(deadline) {
		m, err := c.scrape(ctx)
		if err == nil {
			ok := true
			for _, n := range names {
				q := queue(m, n)
				ok = ok && q.adds >= minAdds && q.depth == 0 && q.unfinished == 0
			}
			if ok {
				calm++
				if calm == 2 {
					return nil
				}
			} else {
				calm = 0
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("controller queues %v not settled within %s", names, limit)
}

// profile captures a CPU profile of the controller manager into
// dir/name.pprof in the background; wait blocks until it is written. A
// run without -profile does nothing.
func (c *controllerManager) profile(ctx context.Context, dir, name string, d time.Duration) (wait func() error) {
	return c.fetchProfile(ctx, dir, name, fmt.Sprintf("profile?seconds=%d", int(d.Seconds())))
}

// heapProfile writes the controller manager's live heap to dir/name.pprof.
func (c *controllerManager) heapProfile(ctx context.Context, dir, name string) error {
	return c.fetchProfile(ctx, dir, name, "heap?gc=1")()
}

func (c *controllerManager) fetchProfile(ctx context.Context, dir, name, path string) (wait func() error) {
	if dir == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		url := fmt.Sprintf("http://%s/debug/pprof/%s", c.metrics, path)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- errors.Join(err, f.Close())
	}()
	return func() error { return <-done }
}
