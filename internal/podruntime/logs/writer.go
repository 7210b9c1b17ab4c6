package logs

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// MaxLine is the longest text one record carries; a longer line is split
// into partial ("P") records followed by a final ("F") one.
const MaxLine = 16 * 1024

// Stream names as they appear in a record.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Writer serialises the records of several streams into one file.
type Writer struct {
	mu  sync.Mutex
	out io.Writer
	now func() time.Time
}

// NewWriter writes records to out (usually a file opened O_APPEND).
func NewWriter(out io.Writer) *Writer {
	return &Writer{out: out, now: time.Now}
}

// Stream returns the writer for one stream. Each stream buffers its
// unfinished line; Close flushes it as a final record.
func (w *Writer) Stream(name string) io.WriteCloser {
	return &streamWriter{w: w, name: name}
}

func (w *Writer) record(stream string, partial bool, text []byte) error {
	tag := "F"
	if partial {
		tag = "P"
	}
	var b bytes.Buffer
	b.Grow(len(text) + 48)
	b.WriteString(w.now().UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(text)
	b.WriteByte('\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.out.Write(b.Bytes())
	return err
}

type streamWriter struct {
	w    *Writer
	name string
	buf  []byte
}

func (s *streamWriter) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		if err := s.emit(s.buf[:i]); err != nil {
			return len(p), err
		}
		s.buf = s.buf[i+1:]
	}
	for len(s.buf) >= MaxLine {
		if err := s.w.record(s.name, true, s.buf[:MaxLine]); err != nil {
			return len(p), err
		}
		s.buf = s.buf[MaxLine:]
	}
	// Keep the buffer from pinning a large backing array.
	s.buf = append([]byte(nil), s.buf...)
	return len(p), nil
}

// emit writes one complete line, splitting it when it is too long.
func (s *streamWriter) emit(line []byte) error {
	for len(line) > MaxLine {
		if err := s.w.record(s.name, true, line[:MaxLine]); err != nil {
			return err
		}
		line = line[MaxLine:]
	}
	return s.w.record(s.name, false, line)
}

// Close flushes an unterminated last line as a final record.
func (s *streamWriter) Close() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.w.record(s.name, false, s.buf)
	s.buf = nil
	return err
}
