package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/podruntime"
)

// Channel numbers of the remotecommand WebSocket protocols.
const (
	chanStdin = iota
	chanStdout
	chanStderr
	chanError
	chanResize
	numChannels
)

// streamIdleTimeout closes an exec session nobody has typed into or read
// from for this long (the kubelet's default streaming idle timeout).
const streamIdleTimeout = 4 * time.Hour

// execOptions are the exec/attach query parameters.
type execOptions struct {
	command                    []string
	stdin, stdout, stderr, tty bool
}

func parseExecOptions(q url.Values, needCommand bool) (execOptions, error) {
	o := execOptions{command: q["command"]}
	for name, dst := range map[string]*bool{"stdin": &o.stdin, "stdout": &o.stdout, "stderr": &o.stderr, "tty": &o.tty} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("invalid %s %q: %w", name, v, err)
		}
		*dst = b
	}
	switch {
	case needCommand && len(o.command) == 0:
		return o, errors.New("you must specify at least one command for the container")
	case !o.stdin && !o.stdout && !o.stderr:
		return o, errors.New("you must specify at least one of stdin, stdout, stderr")
	case o.tty && o.stderr:
		// A terminal merges both outputs; clients ask for stdout only.
		return o, errors.New("stderr cannot be requested together with tty")
	}
	return o, nil
}

// protocols are the remotecommand protocols served over WebSocket, with
// the channels the request asked for; unrequested ones are ignored.
func protocols(o execOptions) map[string]wsstream.ChannelProtocolConfig {
	ch := make([]wsstream.ChannelType, numChannels)
	ch[chanError] = wsstream.WriteChannel
	if o.stdin {
		ch[chanStdin] = wsstream.ReadChannel
	}
	if o.stdout {
		ch[chanStdout] = wsstream.WriteChannel
	}
	if o.stderr {
		ch[chanStderr] = wsstream.WriteChannel
	}
	if o.tty {
		ch[chanResize] = wsstream.ReadChannel
	}
	return map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: ch},
		remotecommand.StreamProtocolV4Name: {Binary: true, Channels: ch},
	}
}

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	t, ok := s.resolve(w, r)
	if !ok {
		return
	}
	o, err := parseExecOptions(r.URL.Query(), true)
	if err != nil {
		writeStatus(w, badRequest(err.Error()))
		return
	}
	if !wsstream.IsWebSocketRequest(r) {
		writeStatus(w, badRequest(fmt.Sprintf("exec needs a WebSocket upgrade with protocol %s or %s (this agent does not speak SPDY)",
			remotecommand.StreamProtocolV5Name, remotecommand.StreamProtocolV4Name)))
		return
	}
	logger := klog.FromContext(r.Context()).WithValues("pod", t.namespace+"/"+t.pod, "container", t.container)
	conn := wsstream.NewConn(protocols(o))
	conn.SetIdleTimeout(streamIdleTimeout)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		// The WebSocket handshake has answered the client already.
		logger.V(2).Info("Exec handshake failed", "err", err)
		return
	}
	defer func() { _ = conn.Close() }()

	eio := podruntime.ExecIO{TTY: o.tty}
	if o.stdin {
		eio.Stdin = streams[chanStdin]
	}
	if o.stdout {
		eio.Stdout = streams[chanStdout]
	}
	if o.stderr {
		eio.Stderr = streams[chanStderr]
	}
	if o.tty {
		eio.Resize = decodeResizes(r.Context(), streams[chanResize])
	}
	code, err := s.cfg.Runtime.Exec(r.Context(), t.uid, t.container, o.command, eio)
	st := exitStatus(t, code, err)
	if err != nil {
		logger.V(2).Info("Exec failed", "err", err)
	}
	if data, merr := json.Marshal(st); merr == nil {
		if _, werr := streams[chanError].Write(data); werr != nil {
			logger.V(2).Info("Could not report exec result", "err", werr)
		}
	}
}

// exitStatus is what the error channel carries at the end of a session
// (protocol v4 and later): Success, or a Failure whose NonZeroExitCode
// cause clients turn into the command's exit code.
func exitStatus(t target, code int, err error) *metav1.Status {
	switch {
	case err != nil:
		st := runtimeError(t, err)
		st.Kind, st.APIVersion = "Status", "v1"
		return st
	case code != 0:
		return &metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status:   metav1.StatusFailure,
			Reason:   remotecommand.NonZeroExitCodeReason,
			Message:  fmt.Sprintf("command terminated with non-zero exit code: exit status %d", code),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{
				{Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(code)},
			}},
		}
	}
	return &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess}
}

// decodeResizes turns the resize channel's JSON stream into terminal
// sizes; the channel closes when the stream ends.
func decodeResizes(ctx context.Context, r io.Reader) <-chan podruntime.TermSize {
	out := make(chan podruntime.TermSize, 1)
	go func() {
		defer close(out)
		dec := json.NewDecoder(r)
		for {
			var size struct{ Width, Height uint16 }
			if err := dec.Decode(&size); err != nil {
				return
			}
			select {
			case out <- podruntime.TermSize{Width: size.Width, Height: size.Height}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// serveAttach answers honestly: the runtime has no way yet to connect to
// a running container's own stdio.
func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.resolve(w, r); !ok {
		return
	}
	writeStatus(w, &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotImplemented,
		Message: "attach is not supported by this runtime yet"})
}
