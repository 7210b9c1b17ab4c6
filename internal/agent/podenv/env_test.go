package podenv

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeSources answers like the kubelet's managers: NotFound errors named
// after the singular resource.
type fakeSources struct {
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
	calls      int
}

func (f *fakeSources) ConfigMap(ns, name string) (*v1.ConfigMap, error) {
	f.calls++
	if cm, ok := f.configMaps[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmap"}, name)
}

func (f *fakeSources) Secret(ns, name string) (*v1.Secret, error) {
	f.calls++
	if s, ok := f.secrets[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secret"}, name)
}

func ptr[T any](v T) *T { return &v }

func newSources() *fakeSources {
	return &fakeSources{
		configMaps: map[string]*v1.ConfigMap{
			"default/app":  {Data: map[string]string{"MODE": "prod", "LEVEL": "3", "bad=key": "x", "1STARTS_DIGIT": "ok"}},
			"default/more": {Data: map[string]string{"MODE": "dev"}},
		},
		secrets: map[string]*v1.Secret{
			"default/creds": {Data: map[string][]byte{"user": []byte("admin"), "pass": []byte("s3cret")}},
		},
	}
}

func testPod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-0", Namespace: "default", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": "hi"},
		},
		Spec: v1.PodSpec{NodeName: "node-a", ServiceAccountName: "sa"},
	}
}

func TestContainerEnv(t *testing.T) {
	svcEnv := []v1.EnvVar{
		{Name: "REDIS_SERVICE_HOST", Value: "10.0.0.11"},
		{Name: "REDIS_SERVICE_PORT", Value: "6379"},
		{Name: "OVERRIDDEN", Value: "from-service"},
	}
	alloc := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi")}

	tests := []struct {
		name    string
		c       v1.Container
		want    []string
		wantErr string
	}{
		{
			name: "plain values, expansion, escapes, service vars last",
			c: v1.Container{Env: []v1.EnvVar{
				{Name: "A", Value: "a"},
				{Name: "B", Value: "$(A)-$(REDIS_SERVICE_HOST):$(REDIS_SERVICE_PORT)"},
				{Name: "C", Value: "$$(A) $(LATER) $(MISSING) $x $"},
				{Name: "LATER", Value: "l"},
				{Name: "OVERRIDDEN", Value: "mine"},
				{Name: "EMPTY"},
			}},
			want: []string{
				"A=a", "B=a-10.0.0.11:6379", "C=$(A) $(LATER) $(MISSING) $x $", "LATER=l", "OVERRIDDEN=mine", "EMPTY=",
				"REDIS_SERVICE_HOST=10.0.0.11", "REDIS_SERVICE_PORT=6379",
			},
		},
		{
			name: "envFrom with prefix, sorted keys, invalid keys skipped, env overrides",
			c: v1.Container{
				EnvFrom: []v1.EnvFromSource{
					{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "app"}}},
					{Prefix: "DB_", SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}}},
					{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "more"}}},
					{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}, Optional: ptr(true)}},
					{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}, Optional: ptr(true)}},
				},
				Env: []v1.EnvVar{{Name: "LEVEL", Value: "9-$(MODE)"}},
			},
			want: []string{
				"1STARTS_DIGIT=ok", "LEVEL=9-dev", "MODE=dev", "DB_pass=s3cret", "DB_user=admin",
				"REDIS_SERVICE_HOST=10.0.0.11", "REDIS_SERVICE_PORT=6379", "OVERRIDDEN=from-service",
			},
		},
		{
			name: "downward API fields",
			c: v1.Container{Env: []v1.EnvVar{
				{Name: "NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "NS", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}},
				{Name: "UID", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
				{Name: "APP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
				{Name: "NONE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['nope']"}}},
				{Name: "NOTE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.annotations['note']"}}},
				{Name: "NODE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
				{Name: "SA", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.serviceAccountName"}}},
				{Name: "IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				{Name: "IPS", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIPs"}}},
				{Name: "HOST", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
				{Name: "HOSTS", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.hostIPs"}}},
				{Name: "LABELS", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}}},
				{Name: "USE", Value: "$(NAME).$(NS)@$(IP)"},
			}},
			want: []string{
				"NAME=web-0", "NS=default", "UID=uid-1", "APP=web", "NONE=", "NOTE=hi", "NODE=node-a", "SA=sa",
				"IP=10.244.0.5", "IPS=10.244.0.5,fd00::5", "HOST=192.168.1.10", "HOSTS=192.168.1.10",
				"LABELS=app=\"web\"\ntier=\"front\"", "USE=web-0.default@10.244.0.5",
				"REDIS_SERVICE_HOST=10.0.0.11", "REDIS_SERVICE_PORT=6379", "OVERRIDDEN=from-service",
			},
		},
		{
			name: "resource fields with divisors and allocatable for unset limits",
			c: v1.Container{
				Name: "main",
				Resources: v1.ResourceRequirements{
					Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")},
					Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
				},
				Env: []v1.EnvVar{
					{Name: "CPU_LIMIT", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}},
					{Name: "CPU_LIMIT_M", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}}},
					{Name: "MEM_LIMIT_MI", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
					{Name: "MEM_REQ", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "requests.memory"}}},
					{Name: "CPU_REQ", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "requests.cpu"}}},
				},
			},
			want: []string{
				"CPU_LIMIT=1", "CPU_LIMIT_M=250", "MEM_LIMIT_MI=8192", "MEM_REQ=67108864", "CPU_REQ=0",
				"REDIS_SERVICE_HOST=10.0.0.11", "REDIS_SERVICE_PORT=6379", "OVERRIDDEN=from-service",
			},
		},
		{
			name: "configMap and secret keys, optional misses skipped",
			c: v1.Container{Env: []v1.EnvVar{
				{Name: "M", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "app"}, Key: "MODE"}}},
				{Name: "U", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Key: "user"}}},
				{Name: "OPT1", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "app"}, Key: "nokey", Optional: ptr(true)}}},
				{Name: "OPT2", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}, Key: "k", Optional: ptr(true)}}},
				{Name: "OPT3", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Key: "nokey", Optional: ptr(true)}}},
			}},
			want: []string{"M=prod", "U=admin", "REDIS_SERVICE_HOST=10.0.0.11", "REDIS_SERVICE_PORT=6379", "OVERRIDDEN=from-service"},
		},
		{
			name: "missing configmap",
			c: v1.Container{EnvFrom: []v1.EnvFromSource{
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "x"}}},
			}},
			wantErr: `configmap "x" not found`,
		},
		{
			name: "missing configmap key",
			c: v1.Container{Env: []v1.EnvVar{
				{Name: "Y", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "app"}, Key: "y"}}},
			}},
			wantErr: `couldn't find key y in ConfigMap default/app`,
		},
		{
			name: "missing secret",
			c: v1.Container{Env: []v1.EnvVar{
				{Name: "S", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "s"}, Key: "k"}}},
			}},
			wantErr: `secret "s" not found`,
		},
		{
			name: "missing secret key",
			c: v1.Container{Env: []v1.EnvVar{
				{Name: "S", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Key: "token"}}},
			}},
			wantErr: `couldn't find key token in Secret default/creds`,
		},
		{
			name: "unsupported field path",
			c: v1.Container{Env: []v1.EnvVar{
				{Name: "X", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.bogus"}}},
			}},
			wantErr: `unsupported fieldPath: spec.bogus`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod()
			pod.Spec.Containers = []v1.Container{tt.c}
			got, err := ContainerEnv(pod, &pod.Spec.Containers[0], svcEnv, newSources(),
				"", "192.168.1.10", []string{"10.244.0.5", "fd00::5"}, alloc)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestContainerEnvNotFoundIsTyped(t *testing.T) {
	pod := testPod()
	c := v1.Container{EnvFrom: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}}}}}
	_, err := ContainerEnv(pod, &c, nil, newSources(), "10.0.0.1", "", nil, nil)
	if !apierrors.IsNotFound(err) {
		t.Fatalf("err = %v, want a NotFound API error", err)
	}
}

func TestContainerEnvFetchesEachObjectOnce(t *testing.T) {
	pod := testPod()
	src := newSources()
	ref := func(key string) *v1.EnvVarSource {
		return &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "app"}, Key: key}}
	}
	c := v1.Container{
		EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "app"}}}},
		Env:     []v1.EnvVar{{Name: "X", ValueFrom: ref("MODE")}, {Name: "Y", ValueFrom: ref("LEVEL")}},
	}
	if _, err := ContainerEnv(pod, &c, nil, src, "10.0.0.1", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	if src.calls != 1 {
		t.Fatalf("ConfigMap fetched %d times, want 1", src.calls)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "x", "B": "$(A)", "EMPTY": ""}
	tests := map[string]string{
		"":                 "",
		"plain":            "plain",
		"$(A)":             "x",
		"$(A)$(A)":         "xx",
		"pre-$(A)-post":    "pre-x-post",
		"$(B)":             "$(A)", // no recursive expansion
		"$$(A)":            "$(A)",
		"$$$(A)":           "$x",
		"$$":               "$",
		"$":                "$",
		"a$":               "a$",
		"$(MISSING)":       "$(MISSING)",
		"$(EMPTY)|":        "|",
		"$(A":              "$(A",
		"$(A $(A)":         "$(A $(A)",
		"$A":               "$A",
		"$é":               "$é",
		"100$ and $(A)":    "100$ and x",
		"$()":              "$()",
		"$(A)$$(A)$(NOPE)": "x$(A)$(NOPE)",
	}
	for in, want := range tests {
		if got := Expand(in, env); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExpandCommand(t *testing.T) {
	cmd, args := ExpandCommand(
		[]string{"/bin/sh", "-c", "echo $(MSG)"},
		[]string{"$(HOST):$(PORT)", "$$(PORT)", "$(UNSET)"},
		[]string{"MSG=hello world", "HOST=h", "PORT=1", "PORT=2", "EQ=a=b"},
	)
	if want := []string{"/bin/sh", "-c", "echo hello world"}; !reflect.DeepEqual(cmd, want) {
		t.Errorf("command = %q, want %q", cmd, want)
	}
	if want := []string{"h:2", "$(PORT)", "$(UNSET)"}; !reflect.DeepEqual(args, want) {
		t.Errorf("args = %q, want %q", args, want)
	}
	if c, a := ExpandCommand(nil, nil, nil); c != nil || a != nil {
		t.Errorf("nil in should give nil out, got %q %q", c, a)
	}
}
