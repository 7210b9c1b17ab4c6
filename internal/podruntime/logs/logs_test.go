package logs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/podruntime"
)

// writeLog writes records with a clock that advances one second per record
// from t0.
func writeLog(t *testing.T, t0 time.Time, writes ...[2]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f)
	n := 0
	w.now = func() time.Time { n++; return t0.Add(time.Duration(n-1) * time.Second) }
	streams := map[string]interface {
		Write([]byte) (int, error)
		Close() error
	}{Stdout: w.Stream(Stdout), Stderr: w.Stream(Stderr)}
	for _, wr := range writes {
		if _, err := streams[wr[0]].Write([]byte(wr[1])); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range streams {
		s.Close()
	}
	return path
}

func TestWriterFormat(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	path := writeLog(t, t0, [2]string{Stdout, "hel"}, [2]string{Stdout, "lo\nwor"}, [2]string{Stderr, "oops\n"}, [2]string{Stdout, "ld\nunterminated"})
	got, _ := os.ReadFile(path)
	want := "2026-01-02T03:04:05.0000006Z stdout F hello\n" +
		"2026-01-02T03:04:06.0000006Z stderr F oops\n" +
		"2026-01-02T03:04:07.0000006Z stdout F world\n" +
		"2026-01-02T03:04:08.0000006Z stdout F unterminated\n"
	if string(got) != want {
		t.Errorf("log file:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriterSplitsLongLines(t *testing.T) {
	long := strings.Repeat("a", MaxLine) + strings.Repeat("b", 10)
	path := writeLog(t, time.Unix(0, 0), [2]string{Stdout, long + "\n"})
	raw, _ := os.ReadFile(path)
	recs := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(recs) != 2 || strings.Fields(recs[0])[2] != "P" || strings.Fields(recs[1])[2] != "F" {
		t.Fatalf("want one P and one F record, got %d records", len(recs))
	}
	var out bytes.Buffer
	if err := Read(context.Background(), path, podruntime.LogOptions{TailLines: -1}, &out, nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != long+"\n" {
		t.Errorf("read back %d bytes, want the joined line of %d", out.Len(), len(long)+1)
	}
}

func TestRead(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	path := writeLog(t, t0, [2]string{Stdout, "one\n"}, [2]string{Stderr, "two\n"}, [2]string{Stdout, "three\n"}, [2]string{Stdout, "four\n"})
	for _, tc := range []struct {
		name string
		opts podruntime.LogOptions
		want string
	}{
		{"all", podruntime.LogOptions{TailLines: -1}, "one\ntwo\nthree\nfour\n"},
		{"tail 2", podruntime.LogOptions{TailLines: 2}, "three\nfour\n"},
		{"tail 0", podruntime.LogOptions{TailLines: 0}, ""},
		{"limit", podruntime.LogOptions{TailLines: -1, LimitBytes: 6}, "one\ntw"},
		{"since", podruntime.LogOptions{TailLines: -1, SinceTime: t0.Add(2 * time.Second)}, "three\nfour\n"},
		{"timestamps", podruntime.LogOptions{TailLines: 1, Timestamps: true}, "2026-01-01T00:00:03Z four\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Read(context.Background(), path, tc.opts, &out, nil); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

func TestReadMissing(t *testing.T) {
	err := Read(context.Background(), filepath.Join(t.TempDir(), "nope.log"), podruntime.LogOptions{}, &bytes.Buffer{}, nil)
	if !errors.Is(err, podruntime.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

// syncBuffer is read by the test while Read writes to it.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func (s *syncBuffer) Write(b []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.buf.Write(b)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.buf.String()
}

func TestReadFollow(t *testing.T) {
	PollInterval = 10 * time.Millisecond
	path := filepath.Join(t.TempDir(), "0.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f)
	out := w.Stream(Stdout)
	out.Write([]byte("first\n"))

	ended := make(chan struct{})
	isEnded := func() bool {
		select {
		case <-ended:
			return true
		default:
			return false
		}
	}
	buf := &syncBuffer{mu: make(chan struct{}, 1)}
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { done <- Read(ctx, path, podruntime.LogOptions{Follow: true, TailLines: -1}, buf, isEnded) }()

	waitFor(t, func() bool { return buf.String() == "first\n" })
	// A record written in two pieces is only shown once complete.
	f.Write([]byte("2026-01-01T00:00:00Z stdout F sec"))
	time.Sleep(50 * time.Millisecond)
	if got := buf.String(); got != "first\n" {
		t.Fatalf("half a record was shown: %q", got)
	}
	f.Write([]byte("ond\n"))
	waitFor(t, func() bool { return buf.String() == "first\nsecond\n" })
	out.Write([]byte("last\n"))
	close(ended)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Read did not return after the writer ended")
	}
	if got := buf.String(); got != "first\nsecond\nlast\n" {
		t.Errorf("followed %q", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
