package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portal-net/portal/internal/agent/podenv"
	"github.com/portal-net/portal/internal/podruntime"
)

// mounts prepares the volumes a container mounts (under the agent's
// volume dir for the pod) and returns the bind mounts. Config map,
// secret and downward API contents are written at every container start.
func (a *Agent) mounts(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]podruntime.Mount, error) {
	vols := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	var out []podruntime.Mount
	prepared := map[string]string{}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume %q of volumeMount %q is not in the pod's volumes", vm.Name, vm.MountPath)
		}
		dir, ok := prepared[vm.Name]
		if !ok {
			var err error
			if dir, err = a.prepareVolume(ctx, pod, v); err != nil {
				return nil, fmt.Errorf("volume %q: %w", vm.Name, err)
			}
			prepared[vm.Name] = dir
		}
		src := dir
		if vm.SubPath != "" {
			if filepath.IsAbs(vm.SubPath) || strings.Contains(vm.SubPath, "..") {
				return nil, fmt.Errorf("volumeMount %q: subPath %q must be a relative path without '..'", vm.Name, vm.SubPath)
			}
			src = filepath.Join(dir, vm.SubPath)
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, podruntime.Mount{HostPath: src, ContainerPath: vm.MountPath, ReadOnly: vm.ReadOnly})
	}
	return out, nil
}

func (a *Agent) prepareVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) (string, error) {
	dir := filepath.Join(a.volumeDir(pod.UID), v.Name)
	switch {
	case v.HostPath != nil:
		return prepareHostPath(v.HostPath)
	case v.EmptyDir != nil:
		return dir, os.MkdirAll(dir, 0o777)
	case v.ConfigMap != nil:
		files, err := a.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files, mode(v.ConfigMap.DefaultMode, 0o644))
	case v.Secret != nil:
		files, err := a.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional)
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files, mode(v.Secret.DefaultMode, 0o644))
	case v.DownwardAPI != nil:
		files, err := a.downwardFiles(pod, v.DownwardAPI.Items)
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files, mode(v.DownwardAPI.DefaultMode, 0o644))
	case v.Projected != nil:
		files := map[string][]byte{}
		for _, src := range v.Projected.Sources {
			var part map[string][]byte
			var err error
			switch {
			case src.ConfigMap != nil:
				part, err = a.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional)
			case src.Secret != nil:
				part, err = a.secretFiles(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, src.Secret.Optional)
			case src.DownwardAPI != nil:
				part, err = a.downwardFiles(pod, src.DownwardAPI.Items)
			case src.ServiceAccountToken != nil:
				err = errors.New("serviceAccountToken projections are not supported by this node yet")
			default:
				err = errors.New("unsupported projected volume source")
			}
			if err != nil {
				return "", err
			}
			for k, b := range part {
				files[k] = b
			}
		}
		return dir, writeFiles(dir, files, mode(v.Projected.DefaultMode, 0o644))
	}
	return "", errors.New("volume type not supported on this node (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected)")
}

func mode(m *int32, def os.FileMode) os.FileMode {
	if m != nil {
		return os.FileMode(*m) & 0o777
	}
	return def
}

func prepareHostPath(h *corev1.HostPathVolumeSource) (string, error) {
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	fi, err := os.Stat(h.Path)
	switch t {
	case corev1.HostPathDirectoryOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			return h.Path, os.MkdirAll(h.Path, 0o755)
		}
	case corev1.HostPathFileOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
				return "", err
			}
			f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", err
			}
			return h.Path, f.Close()
		}
	case corev1.HostPathDirectory:
		if err != nil || !fi.IsDir() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a directory", h.Path)
		}
	case corev1.HostPathFile:
		if err != nil || !fi.Mode().IsRegular() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a file", h.Path)
		}
	case corev1.HostPathSocket:
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			return "", fmt.Errorf("hostPath type check failed: %s is not a socket file", h.Path)
		}
	default:
		if errors.Is(err, os.ErrNotExist) {
			// Kubelet (and Docker before it) create a missing path as a directory.
			return h.Path, os.MkdirAll(h.Path, 0o755)
		}
	}
	return h.Path, nil
}

func pick(data map[string][]byte, items []corev1.KeyToPath, kind string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = v
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return nil, fmt.Errorf("%s references non-existent key: %s", kind, it.Key)
		}
		out[it.Path] = v
	}
	return out, nil
}

func (a *Agent) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool) (map[string][]byte, error) {
	cm, err := a.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil, nil
	}
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("configmap %q not found", name)
	}
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return pick(data, items, "configmap")
}

func (a *Agent) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool) (map[string][]byte, error) {
	s, err := a.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil, nil
	}
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("secret %q not found", name)
	}
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{}
	for k, v := range s.Data {
		data[k] = v
	}
	for k, v := range s.StringData {
		data[k] = []byte(v)
	}
	return pick(data, items, "secret")
}

// downwardFiles writes pod fields as files, using the env-var resolver
// for the values (the same field paths are allowed).
func (a *Agent) downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, it := range items {
		var env []corev1.EnvVar
		var c corev1.Container
		switch {
		case it.FieldRef != nil:
			env = []corev1.EnvVar{{Name: "V", ValueFrom: &corev1.EnvVarSource{FieldRef: it.FieldRef}}}
		case it.ResourceFieldRef != nil:
			env = []corev1.EnvVar{{Name: "V", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: it.ResourceFieldRef}}}
			if cc := podenv.FindContainer(pod, it.ResourceFieldRef.ContainerName); cc != nil {
				c = *cc
			}
		default:
			continue
		}
		c.Env = env
		c.EnvFrom = nil
		vals, err := podenv.ContainerEnv(pod, &c, nil, nil, pod.Status.PodIP, a.cfg.NodeIP, nil, a.mach.capacity)
		if err != nil {
			return nil, err
		}
		for _, kv := range vals {
			if v, ok := strings.CutPrefix(kv, "V="); ok {
				out[it.Path] = []byte(v)
			}
		}
	}
	return out, nil
}

// writeFiles replaces dir's content with files (paths may have
// subdirectories).
func writeFiles(dir string, files map[string][]byte, perm os.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if filepath.IsAbs(k) || strings.Contains(k, "..") {
			return fmt.Errorf("path %q must be relative without '..'", k)
		}
		p := filepath.Join(dir, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, files[k], perm); err != nil {
			return err
		}
		if err := os.Chmod(tmp, perm); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	return nil
}
