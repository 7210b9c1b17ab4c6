package storage_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portal-net/portal/internal/storage"
	"github.com/portal-net/portal/internal/storage/storagetest"
)

// Environment of the writer child process.
const (
	envCrashDir    = "PORTAL_STORAGE_CRASH_DIR"
	envCrashClient = "PORTAL_STORAGE_CRASH_CLIENT"
	envCrashPeer   = "PORTAL_STORAGE_CRASH_PEER"
)

// TestCrashWriter is the child of TestKillAfterAckLosesNothing: it writes
// keys one by one, printing each acknowledged one, until it is killed.
func TestCrashWriter(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("only runs as the child of TestKillAfterAckLosesNothing")
	}
	b, err := storage.Start(context.Background(), storage.Config{
		DataDir:   dir,
		ClientURL: os.Getenv(envCrashClient),
		PeerURL:   os.Getenv(envCrashPeer),
	})
	if err != nil {
		fmt.Println("start failed:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := b.Client().Put(ctx, fmt.Sprintf("/crash/%06d", i), strconv.Itoa(i))
		cancel()
		if err != nil {
			fmt.Println("put failed:", err)
			os.Exit(1)
		}
		fmt.Printf("acked %d\n", i)
	}
}

func TestKillAfterAckLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	urls, err := storagetest.FreeURLs(2)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashClient+"="+urls[0], envCrashPeer+"="+urls[1])
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	// Kill as soon as enough writes were acknowledged, while the child is
	// in the middle of writing more.
	const enough = 200
	lastAcked := -1
	deadline := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	scanner := bufio.NewScanner(stdout)
	for scanner.Scan() {
		line := scanner.Text()
		n, ok := strings.CutPrefix(line, "acked ")
		if !ok {
			t.Fatalf("child: %s\nstderr:\n%s", line, stderr.String())
		}
		if lastAcked, err = strconv.Atoi(n); err != nil {
			t.Fatal(err)
		}
		if lastAcked >= enough {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	if lastAcked < enough {
		t.Fatalf("child acknowledged only %d writes\nstderr:\n%s", lastAcked+1, stderr.String())
	}
	if strings.Contains(stderr.String(), `"level":"info"`) {
		t.Errorf("default embedded logging is not quiet:\n%s", stderr.String())
	}

	b, err := storage.Start(context.Background(), storage.Config{DataDir: dir, ClientURL: urls[0], PeerURL: urls[1], Logger: storagetest.Config(t, dir).Logger})
	if err != nil {
		t.Fatalf("restart after kill: %v", err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := b.Client().Get(ctx, "/crash/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = true
	}
	for i := 0; i <= lastAcked; i++ {
		if key := fmt.Sprintf("/crash/%06d", i); !have[key] {
			t.Errorf("acknowledged write %s lost after kill -9", key)
		}
	}
}
