package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigName names the cluster, user and context of the admin
// kubeconfig.
const KubeconfigName = "portal"

// AdminKubeconfig builds the admin kubeconfig for serverURL with the CA and
// the admin credentials embedded, so the file works when copied elsewhere.
func AdminKubeconfig(serverURL string, b *Bundle) (*clientcmdapi.Config, error) {
	if b == nil || len(b.CACertPEM) == 0 || len(b.AdminCertPEM) == 0 || len(b.AdminKeyPEM) == 0 {
		return nil, errors.New("pki: kubeconfig needs a bundle with CA and admin credentials")
	}
	if serverURL == "" {
		return nil, errors.New("pki: kubeconfig needs a server URL")
	}
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = serverURL
	cluster.CertificateAuthorityData = b.CACertPEM
	cfg.Clusters[KubeconfigName] = cluster

	user := clientcmdapi.NewAuthInfo()
	user.ClientCertificateData = b.AdminCertPEM
	user.ClientKeyData = b.AdminKeyPEM
	cfg.AuthInfos[KubeconfigName] = user

	ctx := clientcmdapi.NewContext()
	ctx.Cluster = KubeconfigName
	ctx.AuthInfo = KubeconfigName
	cfg.Contexts[KubeconfigName] = ctx
	cfg.CurrentContext = KubeconfigName
	return cfg, nil
}

// WriteKubeconfig writes the admin kubeconfig to path (mode 0600, parent
// directories created 0700), replacing any previous file atomically.
func WriteKubeconfig(path, serverURL string, b *Bundle) error {
	cfg, err := AdminKubeconfig(serverURL, b)
	if err != nil {
		return err
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("pki: encode kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("pki: create directory for kubeconfig %s: %w", path, err)
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("pki: write kubeconfig: %w", err)
	}
	return nil
}
