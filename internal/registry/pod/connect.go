package pod

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericrest "k8s.io/apiserver/pkg/registry/generic/rest"
	"k8s.io/apiserver/pkg/registry/rest"
)

// DefaultAgentPort is the agent API port when a Node does not publish one
// (the kubelet's well-known port).
const DefaultAgentPort = 10250

// NodeConnection is how pod subresources reach the node agent that runs
// the pod.
type NodeConnection struct {
	// Nodes reads Node objects (their InternalIP and agent port).
	Nodes rest.Getter
	// Transport carries requests to agents. It must present the API
	// server's client certificate; upgrades (exec, attach) dial with its
	// TLS config, so it should be an *http.Transport.
	Transport http.RoundTripper
}

// agentLocation is the URL of path on the agent of the node pod is bound to.
func (c NodeConnection) agentLocation(ctx context.Context, pod *corev1.Pod, path string, query url.Values) (*url.URL, error) {
	if pod.Spec.NodeName == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("pod %s is not scheduled to a node yet", pod.Name))
	}
	obj, err := c.Nodes.Get(genericapirequest.WithNamespace(ctx, metav1.NamespaceNone), pod.Spec.NodeName, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("pod %s is bound to node %q, which is not registered: no node agent can serve it", pod.Name, pod.Spec.NodeName))
	}
	if err != nil {
		return nil, err
	}
	node := obj.(*corev1.Node)
	var ip string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ip = a.Address
			break
		}
	}
	if ip == "" {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("node %q has no InternalIP address: cannot reach its node agent", node.Name))
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = DefaultAgentPort
	}
	return &url.URL{Scheme: "https", Host: net.JoinHostPort(ip, strconv.Itoa(port)), Path: path, RawQuery: query.Encode()}, nil
}

// getPod reads a pod through the pods store.
func getPod(ctx context.Context, pods rest.Getter, name string) (*corev1.Pod, error) {
	obj, err := pods.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Pod), nil
}

// containerFor picks the container a request is about, as kube-apiserver
// does: the named one (any kind), or the only one.
func containerFor(pod *corev1.Pod, name string) (string, error) {
	if name == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", apierrors.NewBadRequest(fmt.Sprintf("pod %s has no containers", pod.Name))
		}
		names := make([]string, 0, len(pod.Spec.Containers))
		for _, c := range pod.Spec.Containers {
			names = append(names, c.Name)
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, names))
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return name, nil
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return name, nil
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return name, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
}

func agentPath(kind string, pod *corev1.Pod, container string) string {
	return "/" + kind + "/" + pod.Namespace + "/" + pod.Name + "/" + container
}

// Log serves pods/log by streaming the container log from the agent.
type Log struct {
	pods rest.Getter
	conn NodeConnection
}

var _ rest.GetterWithOptions = &Log{}

// New implements rest.Storage.
func (l *Log) New() runtime.Object { return &corev1.Pod{} }

// Destroy implements rest.Storage.
func (l *Log) Destroy() {}

// NewGetOptions implements rest.GetterWithOptions.
func (l *Log) NewGetOptions() (runtime.Object, bool, string) {
	return &corev1.PodLogOptions{}, false, ""
}

// OverrideMetricsVerb keeps log requests counted as CONNECT, as upstream.
func (l *Log) OverrideMetricsVerb(oldVerb string) (newVerb string) { return "CONNECT" }

// ProducesMIMETypes and ProducesObject tell OpenAPI the log is plain text.
func (l *Log) ProducesMIMETypes(verb string) []string {
	return []string{"text/plain", "application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
}

// ProducesObject implements rest.StorageMetadata.
func (l *Log) ProducesObject(verb string) interface{} { return "" }

// Get returns a stream of the container's log.
func (l *Log) Get(ctx context.Context, name string, options runtime.Object) (runtime.Object, error) {
	opts, ok := options.(*corev1.PodLogOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", options))
	}
	if errs := validateLogOptions(opts); len(errs) > 0 {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("PodLogOptions").GroupKind(), name, errs)
	}
	pod, err := getPod(ctx, l.pods, name)
	if err != nil {
		return nil, err
	}
	container, err := containerFor(pod, opts.Container)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	setBool(q, "follow", opts.Follow)
	setBool(q, "previous", opts.Previous)
	setBool(q, "timestamps", opts.Timestamps)
	setInt(q, "tailLines", opts.TailLines)
	setInt(q, "limitBytes", opts.LimitBytes)
	setInt(q, "sinceSeconds", opts.SinceSeconds)
	if opts.SinceTime != nil {
		q.Set("sinceTime", opts.SinceTime.UTC().Format(time.RFC3339))
	}
	loc, err := l.conn.agentLocation(ctx, pod, agentPath("containerLogs", pod, container), q)
	if err != nil {
		return nil, err
	}
	return &genericrest.LocationStreamer{
		Location:        loc,
		Transport:       l.conn.Transport,
		ContentType:     "text/plain",
		Flush:           opts.Follow,
		ResponseChecker: agentResponseChecker{},
		RedirectChecker: genericrest.PreventRedirects,
	}, nil
}

func validateLogOptions(o *corev1.PodLogOptions) field.ErrorList {
	var errs field.ErrorList
	if o.TailLines != nil && *o.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *o.TailLines, "must be greater than or equal to 0"))
	}
	if o.LimitBytes != nil && *o.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *o.LimitBytes, "must be greater than 0"))
	}
	if o.SinceSeconds != nil && *o.SinceSeconds < 1 {
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *o.SinceSeconds, "must be greater than 0"))
	}
	if o.SinceSeconds != nil && o.SinceTime != nil {
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	}
	return errs
}

// agentResponseChecker turns an agent's error answer (a metav1.Status)
// into the API error the client sees.
type agentResponseChecker struct{}

func (agentResponseChecker) Check(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		if st.Code == 0 {
			st.Code = int32(resp.StatusCode)
		}
		return &apierrors.StatusError{ErrStatus: st}
	}
	return apierrors.NewGenericServerResponse(resp.StatusCode, "", corev1.Resource("pods/log"), "", string(body), 0, false)
}

func setBool(q url.Values, name string, v bool) {
	if v {
		q.Set(name, "true")
	}
}

func setInt(q url.Values, name string, v *int64) {
	if v != nil {
		q.Set(name, strconv.FormatInt(*v, 10))
	}
}

// Exec serves pods/exec by proxying the upgraded connection to the agent.
type Exec struct {
	pods rest.Getter
	conn NodeConnection
}

var _ rest.Connecter = &Exec{}

// New implements rest.Storage.
func (e *Exec) New() runtime.Object { return &corev1.Pod{} }

// Destroy implements rest.Storage.
func (e *Exec) Destroy() {}

// NewConnectOptions implements rest.Connecter.
func (e *Exec) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodExecOptions{}, false, ""
}

// ConnectMethods implements rest.Connecter: WebSocket clients GET, SPDY
// clients POST.
func (e *Exec) ConnectMethods() []string { return []string{http.MethodGet, http.MethodPost} }

// Connect proxies an exec session to the pod's node agent.
func (e *Exec) Connect(ctx context.Context, name string, options runtime.Object, responder rest.Responder) (http.Handler, error) {
	opts, ok := options.(*corev1.PodExecOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", options))
	}
	if len(opts.Command) == 0 {
		return nil, apierrors.NewBadRequest("you must specify at least 1 command")
	}
	q := streamQuery(opts.Stdin, opts.Stdout, opts.Stderr, opts.TTY)
	q["command"] = opts.Command
	return connect(ctx, e.pods, e.conn, "exec", name, opts.Container, q, responder)
}

// Attach serves pods/attach the same way as Exec.
type Attach struct {
	pods rest.Getter
	conn NodeConnection
}

var _ rest.Connecter = &Attach{}

// New implements rest.Storage.
func (a *Attach) New() runtime.Object { return &corev1.Pod{} }

// Destroy implements rest.Storage.
func (a *Attach) Destroy() {}

// NewConnectOptions implements rest.Connecter.
func (a *Attach) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodAttachOptions{}, false, ""
}

// ConnectMethods implements rest.Connecter.
func (a *Attach) ConnectMethods() []string { return []string{http.MethodGet, http.MethodPost} }

// Connect proxies an attach session to the pod's node agent.
func (a *Attach) Connect(ctx context.Context, name string, options runtime.Object, responder rest.Responder) (http.Handler, error) {
	opts, ok := options.(*corev1.PodAttachOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", options))
	}
	return connect(ctx, a.pods, a.conn, "attach", name, opts.Container, streamQuery(opts.Stdin, opts.Stdout, opts.Stderr, opts.TTY), responder)
}

func streamQuery(stdin, stdout, stderr, tty bool) url.Values {
	q := url.Values{}
	setBool(q, "stdin", stdin)
	setBool(q, "stdout", stdout)
	setBool(q, "stderr", stderr)
	setBool(q, "tty", tty)
	return q
}

func connect(ctx context.Context, pods rest.Getter, conn NodeConnection, kind, name, container string, q url.Values, responder rest.Responder) (http.Handler, error) {
	if q.Get("stdin") == "" && q.Get("stdout") == "" && q.Get("stderr") == "" {
		return nil, apierrors.NewBadRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	pod, err := getPod(ctx, pods, name)
	if err != nil {
		return nil, err
	}
	container, err = containerFor(pod, container)
	if err != nil {
		return nil, err
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("cannot %s into a container in a completed pod; current phase is %s", kind, pod.Status.Phase))
	}
	loc, err := conn.agentLocation(ctx, pod, agentPath(kind, pod, container), q)
	if err != nil {
		return nil, err
	}
	h := proxy.NewUpgradeAwareHandler(loc, conn.Transport, false, true, errorResponder{responder})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// The agent authenticates the API server by its client
		// certificate; the user's own credentials stay here.
		req = req.Clone(req.Context())
		req.Header.Del("Authorization")
		h.ServeHTTP(w, req)
	}), nil
}

type errorResponder struct{ r rest.Responder }

func (e errorResponder) Error(w http.ResponseWriter, req *http.Request, err error) { e.r.Error(err) }

// AddConversions registers how the query parameters of pods/log, exec and
// attach decode into their options (upstream generates these in
// k8s.io/kubernetes, which portal does not import).
func AddConversions(s *runtime.Scheme) error {
	if err := s.AddConversionFunc((*url.Values)(nil), (*corev1.PodLogOptions)(nil), func(a, b interface{}, scope conversion.Scope) error {
		return logOptionsFromQuery(*a.(*url.Values), b.(*corev1.PodLogOptions), scope)
	}); err != nil {
		return err
	}
	if err := s.AddConversionFunc((*url.Values)(nil), (*corev1.PodExecOptions)(nil), func(a, b interface{}, scope conversion.Scope) error {
		q, o := *a.(*url.Values), b.(*corev1.PodExecOptions)
		o.Command = q["command"]
		return streamOptionsFromQuery(q, &o.Stdin, &o.Stdout, &o.Stderr, &o.TTY, &o.Container, scope)
	}); err != nil {
		return err
	}
	return s.AddConversionFunc((*url.Values)(nil), (*corev1.PodAttachOptions)(nil), func(a, b interface{}, scope conversion.Scope) error {
		o := b.(*corev1.PodAttachOptions)
		return streamOptionsFromQuery(*a.(*url.Values), &o.Stdin, &o.Stdout, &o.Stderr, &o.TTY, &o.Container, scope)
	})
}

func streamOptionsFromQuery(q url.Values, stdin, stdout, stderr, tty *bool, container *string, scope conversion.Scope) error {
	for name, dst := range map[string]*bool{"stdin": stdin, "stdout": stdout, "stderr": stderr, "tty": tty} {
		if v, ok := q[name]; ok {
			if err := runtime.Convert_Slice_string_To_bool(&v, dst, scope); err != nil {
				return err
			}
		}
	}
	if v, ok := q["container"]; ok {
		return runtime.Convert_Slice_string_To_string(&v, container, scope)
	}
	return nil
}

func logOptionsFromQuery(q url.Values, o *corev1.PodLogOptions, scope conversion.Scope) error {
	for name, dst := range map[string]*bool{"follow": &o.Follow, "previous": &o.Previous, "timestamps": &o.Timestamps,
		"insecureSkipTLSVerifyBackend": &o.InsecureSkipTLSVerifyBackend} {
		if v, ok := q[name]; ok {
			if err := runtime.Convert_Slice_string_To_bool(&v, dst, scope); err != nil {
				return err
			}
		}
	}
	for name, dst := range map[string]**int64{"sinceSeconds": &o.SinceSeconds, "tailLines": &o.TailLines, "limitBytes": &o.LimitBytes} {
		if v, ok := q[name]; ok {
			if err := runtime.Convert_Slice_string_To_Pointer_int64(&v, dst, scope); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if v, ok := q["sinceTime"]; ok {
		if err := metav1.Convert_Slice_string_To_Pointer_v1_Time(&v, &o.SinceTime, scope); err != nil {
			return fmt.Errorf("sinceTime: %w", err)
		}
	}
	if v, ok := q["container"]; ok {
		if err := runtime.Convert_Slice_string_To_string(&v, &o.Container, scope); err != nil {
			return err
		}
	}
	if v, ok := q["stream"]; ok && len(v) > 0 {
		o.Stream = &v[0]
	}
	return nil
}
