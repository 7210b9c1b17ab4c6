package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/portal-net/portal/internal/podruntime"
)

// PollInterval is how often a followed file is checked for new records.
var PollInterval = 100 * time.Millisecond

// errLimit stops the copy once LimitBytes have been written.
var errLimit = errors.New("limit reached")

// line is one logical log line: partial records joined with their final one.
type line struct {
	ts   time.Time
	text []byte // with its trailing newline
}

// Read writes the log at path to w as kubectl shows it: the text of every
// line, prefixed with its RFC3339Nano time when opts.Timestamps. With
// opts.Follow it keeps polling for new records until ctx ends or ended()
// reports that the writer is gone (the rest of the file is still written).
// A missing file is podruntime.ErrNotFound.
func Read(ctx context.Context, path string, opts podruntime.LogOptions, w io.Writer, ended func() bool) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("log %s: %w", path, podruntime.ErrNotFound)
		}
		return err
	}
	defer f.Close()

	out := &limitWriter{w: w, limit: opts.LimitBytes}
	p := &parser{partial: map[string]*line{}}
	r := bufio.NewReaderSize(f, 64*1024)

	// The existing content first, so TailLines can count from the end.
	var lines []line
	if err := p.feed(r, func(l line) error { lines = append(lines, l); return nil }); err != nil {
		return err
	}
	if opts.TailLines >= 0 && int64(len(lines)) > opts.TailLines {
		lines = lines[int64(len(lines))-opts.TailLines:]
	}
	emit := func(l line) error {
		if !opts.SinceTime.IsZero() && l.ts.Before(opts.SinceTime) {
			return nil
		}
		if opts.Timestamps {
			if _, err := out.Write([]byte(l.ts.Format(time.RFC3339Nano) + " ")); err != nil {
				return err
			}
		}
		_, err := out.Write(l.text)
		return err
	}
	for _, l := range lines {
		if err := emit(l); err != nil {
			return ignoreLimit(err)
		}
	}
	if !opts.Follow {
		return nil
	}
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		// Ask before reading, so records written just before the end are
		// read by this last pass.
		done := ended != nil && ended()
		if err := p.feed(r, emit); err != nil {
			return ignoreLimit(err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

// parser turns records into lines; it keeps an unfinished record (the
// writer is mid-write) and unfinished partial lines between feeds.
type parser struct {
	pending []byte           // bytes of a record without its newline yet
	partial map[string]*line // per stream
}

func (p *parser) feed(r *bufio.Reader, fn func(line) error) error {
	for {
		chunk, err := r.ReadSlice('\n')
		if len(chunk) > 0 {
			p.pending = append(p.pending, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		rec := p.pending[:len(p.pending)-1]
		if l, ok := p.record(rec); ok {
			if err := fn(l); err != nil {
				p.pending = p.pending[:0]
				return err
			}
		}
		p.pending = p.pending[:0]
	}
}

// record parses "<time> <stream> <F|P> <text>"; malformed records are
// skipped.
func (p *parser) record(rec []byte) (line, bool) {
	fields := bytes.SplitN(rec, []byte(" "), 4)
	if len(fields) < 3 {
		return line{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(fields[0]))
	if err != nil {
		return line{}, false
	}
	var text []byte
	if len(fields) == 4 {
		text = fields[3]
	}
	stream := string(fields[1])
	cur := p.partial[stream]
	if cur == nil {
		cur = &line{ts: ts}
		p.partial[stream] = cur
	}
	cur.text = append(cur.text, text...)
	if string(fields[2]) == "P" {
		return line{}, false
	}
	delete(p.partial, stream)
	cur.text = append(cur.text, '\n')
	return *cur, true
}

type limitWriter struct {
	w       io.Writer
	limit   int64 // 0: no limit
	written int64
}

func (l *limitWriter) Write(b []byte) (int, error) {
	if l.limit > 0 {
		left := l.limit - l.written
		if left <= 0 {
			return 0, errLimit
		}
		if int64(len(b)) > left {
			n, err := l.w.Write(b[:left])
			l.written += int64(n)
			if err == nil {
				err = errLimit
			}
			return n, err
		}
	}
	n, err := l.w.Write(b)
	l.written += int64(n)
	return n, err
}
