package apiserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/anonymous"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authentication/user"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/rest"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/pki"
	"github.com/portal-net/portal/internal/storage"
	"github.com/portal-net/portal/internal/version"
)

// Server is a running (or ready to run) portal API server.
type Server struct {
	cfg      config.Server
	backend  *storage.Backend
	generic  *genericapiserver.GenericAPIServer
	services *serviceAllocation
	bundle   *pki.Bundle
	ready    chan struct{}
	url      string
}

// New prepares the API server: certificates, storage, registries. It does
// not serve until Run.
func New(ctx context.Context, cfg config.Server) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	advertise := advertiseIP(cfg.AdvertiseAddress)
	serviceNet, _ := cfg.ServiceNet()
	firstIP := nthIP(serviceNet, 1)
	hosts := []string{"127.0.0.1", "::1", "localhost", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc." + cfg.ClusterDomain, firstIP.String(), advertise.String()}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	hosts = append(hosts, cfg.ExtraSANs...)
	bundle, err := pki.Ensure(pki.Config{Dir: cfg.DataDir + "/tls", Hosts: sets.List(sets.New(hosts...))})
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}

	backend, err := storage.Start(ctx, storage.Config{
		DataDir:     cfg.DataDir,
		EtcdServers: cfg.EtcdServers,
		CAFile:      cfg.EtcdCAFile, CertFile: cfg.EtcdCertFile, KeyFile: cfg.EtcdKeyFile,
		Prefix:    cfg.EtcdPrefix,
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", cfg.EtcdClientPort),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", cfg.EtcdPeerPort),
	})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	s := &Server{cfg: cfg, backend: backend, bundle: bundle, ready: make(chan struct{})}
	if err := s.build(ctx, advertise); err != nil {
		backend.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) build(ctx context.Context, advertise net.IP) error {
	gc := genericapiserver.NewRecommendedConfig(Codecs)
	gc.EffectiveVersion = basecompatibility.NewEffectiveVersionFromString(version.KubernetesVersion, "", "")
	gc.ExternalAddress = net.JoinHostPort(advertise.String(), strconv.Itoa(s.cfg.SecurePort))
	gc.PublicAddress = advertise
	// Followed logs and exec/attach sessions last as long as the user
	// wants: no request timeout, not counted as in-flight (as upstream).
	gc.LongRunningFunc = genericfilters.BasicLongRunningRequestCheck(
		sets.NewString("watch", "proxy"), sets.NewString("attach", "exec", "proxy", "log", "portforward"))

	serving := genericoptions.NewSecureServingOptions()
	serving.BindAddress = net.ParseIP(s.cfg.BindAddress)
	serving.BindPort = s.cfg.SecurePort
	serving.ServerCert.CertKey.CertFile = s.bundle.ServingCertFile
	serving.ServerCert.CertKey.KeyFile = s.bundle.ServingKeyFile
	if err := serving.ApplyTo(&gc.SecureServing); err != nil {
		return fmt.Errorf("serving: %w", err)
	}
	loopback, err := loopbackClient(gc.SecureServing)
	if err != nil {
		return fmt.Errorf("loopback client: %w", err)
	}
	gc.LoopbackClientConfig = loopback
	caPEM, err := os.ReadFile(s.bundle.CACertFile)
	if err != nil {
		return err
	}
	clientCA, err := dynamiccertificates.NewStaticCAContent("client-ca", caPEM)
	if err != nil {
		return err
	}
	gc.SecureServing.ClientCA = clientCA
	authn, err := s.authenticator(clientCA)
	if err != nil {
		return err
	}
	gc.Authentication.Authenticator = authn
	gc.Authorization.Authorizer = newAuthorizer()
	genericapiserver.AuthorizeClientBearerToken(gc.LoopbackClientConfig, &gc.Authentication, &gc.Authorization)

	namer := openapinamer.NewDefinitionNamer(openAPIScheme)
	gc.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openAPIDefinitions, namer)
	gc.OpenAPIConfig.Info.Title = "Kubernetes"
	gc.OpenAPIConfig.Info.Version = version.KubernetesVersion
	gc.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openAPIDefinitions, namer)
	gc.OpenAPIV3Config.Info.Title = "Kubernetes"
	gc.OpenAPIV3Config.Info.Version = version.KubernetesVersion

	etcd := genericoptions.NewEtcdOptions(storagebackend.NewDefaultConfig(s.cfg.EtcdPrefix, nil))
	etcd.StorageConfig.Transport = s.backend.Transport()
	etcd.StorageConfig.Codec = Codecs.LegacyCodec(storageVersions()...)
	// JSON in etcd keeps the allocator's IPAddress records (written by the
	// allocator directly) readable by the ipaddresses registry.
	etcd.DefaultStorageMediaType = "application/json"
	if err := etcd.ApplyTo(&gc.Config); err != nil {
		return fmt.Errorf("etcd options: %w", err)
	}

	completed := gc.Complete()
	generic, err := completed.New("portal-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	s.generic = generic
	s.url = "https://" + net.JoinHostPort(loopbackHost(s.cfg.BindAddress), strconv.Itoa(s.cfg.SecurePort))

	if err := s.installResources(ctx, gc.RESTOptionsGetter); err != nil {
		return err
	}
	generic.Handler.NonGoRestfulMux.HandleFunc("/cacerts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(caPEM)
	})
	return s.addHooks(advertise)
}

// authenticator accepts client certificates signed by the cluster CA, the
// agents' join token, and otherwise anonymous requests (which the authorizer
// only lets read health and version endpoints).
func (s *Server) authenticator(clientCA dynamiccertificates.CAContentProvider) (authenticator.Request, error) {
	token, err := pki.LoadToken(s.bundle.Dir)
	if err != nil {
		return nil, err
	}
	tokens := tokenfile.New(map[string]*user.DefaultInfo{
		token: {Name: "system:node:portal-agent", Groups: []string{"system:nodes"}},
	})
	certs := newCertCache(x509request.NewDynamic(clientCA.VerifyOptions, x509request.CommonNameUserConversion))
	authenticated := group.NewAuthenticatedGroupAdder(union.New(certs, bearertoken.New(tokens)))
	return union.New(authenticated, anonymous.NewAuthenticator(nil)), nil
}

// Run serves until ctx ends, then shuts down and closes storage.
func (s *Server) Run(ctx context.Context) error {
	defer s.backend.Close()
	prepared := s.generic.PrepareRun()
	return prepared.RunWithContext(ctx)
}

// Ready is closed when the server answers and bootstrap objects exist.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// URL is the loopback URL of the API.
func (s *Server) URL() string { return s.url }

// LoopbackConfig is the privileged in-process client config.
func (s *Server) LoopbackConfig() *rest.Config {
	return rest.CopyConfig(s.generic.LoopbackClientConfig)
}

// CACertPEM is the cluster CA certificate (PEM).
func (s *Server) CACertPEM() []byte { return s.bundle.CACertPEM }

// WriteJoinToken writes the token agents join with (`portal agent
// --server URL --token TOKEN`) to path, readable by root only.
func (s *Server) WriteJoinToken(path string) (string, error) {
	tok, err := s.bundle.JoinToken()
	if err != nil {
		return "", err
	}
	return tok, os.WriteFile(path, []byte(tok+"\n"), 0o600)
}

// AdminKubeconfig writes the admin kubeconfig to path.
func (s *Server) AdminKubeconfig(path string) error {
	return pki.WriteKubeconfig(path, s.url, s.bundle)
}

func advertiseIP(flag string) net.IP {
	if ip := net.ParseIP(flag); ip != nil {
		return ip
	}
	return config.HostIP()
}

func loopbackHost(bind string) string {
	ip := net.ParseIP(bind)
	if ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return ip.String()
}

// nthIP returns the n-th address of a CIDR (n=1: the first usable one).
func nthIP(n *net.IPNet, i int) net.IP {
	ip := make(net.IP, len(n.IP))
	copy(ip, n.IP)
	for carry, k := i, len(ip)-1; k >= 0 && carry > 0; k-- {
		sum := int(ip[k]) + carry
		ip[k] = byte(sum)
		carry = sum >> 8
	}
	return ip
}

// waitReady polls fn until it succeeds or ctx ends.
func waitReady(ctx context.Context, every time.Duration, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if attempt%20 == 19 {
			klog.InfoS("Still waiting", "attempts", attempt+1, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-time.After(every):
		}
	}
}
