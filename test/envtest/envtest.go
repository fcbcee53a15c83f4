// Package envtest starts a real kube-apiserver and etcd with backflow's CRDs
// installed, for tests. The binaries are built from the Go module proxy by
// test/tools/build.sh (make envtest-assets), because setup-envtest cannot
// download here.
package envtest

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	backflowv1alpha1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/test/tools"
)

// KubernetesVersion is the version of the binaries the tests run against.
const KubernetesVersion = "v1.34.4"

// RepoRoot is the root of the backflow repository.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// CRDDir is the one directory the generated CRDs are written to; the chart
// installs them from there too.
func CRDDir() string { return filepath.Join(RepoRoot(), "charts", "backflow", "crds") }

// AssetsDir is the directory with kube-apiserver and etcd: KUBEBUILDER_ASSETS
// when set, the build cache otherwise.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(tools.CacheDir(), "kube-"+KubernetesVersion, "bin")
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("envtest binary %s missing in %s: run `make test-assets` (make test does)", name, dir)
		}
	}
	return dir, nil
}

// Scheme knows the built-in kinds and backflow's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := backflowv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Cluster is a running envtest control plane.
type Cluster struct {
	Env    *envtest.Environment
	Config *rest.Config
	Client client.Client
}

// Option adjusts the environment before it starts.
type Option func(*envtest.Environment)

// WithCRDs installs the CRDs of more directories.
func WithCRDs(dirs ...string) Option {
	return func(e *envtest.Environment) { e.CRDDirectoryPaths = append(e.CRDDirectoryPaths, dirs...) }
}

// WithAPIServerArg sets a flag of kube-apiserver.
func WithAPIServerArg(name string, values ...string) Option {
	return func(e *envtest.Environment) { e.ControlPlane.GetAPIServer().Configure().Set(name, values...) }
}

// WithScheme replaces the scheme of the client.
func WithScheme(s *runtime.Scheme) Option {
	return func(e *envtest.Environment) { e.Scheme = s }
}

// Start starts kube-apiserver and etcd with backflow's CRDs installed. Stop
// it with Stop.
func Start(opts ...Option) (*Cluster, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{CRDDir()},
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme(),
	}
	for _, opt := range opts {
		opt(env)
	}
	cfg, err := env.Start()
	if err != nil {
		// envtest leaves its processes running when a later part of its
		// start (installing the CRDs) fails: stop them, or every failed run
		// leaves an apiserver and an etcd behind.
		_ = env.Stop()
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Cluster{Env: env, Config: cfg, Client: c}, nil
}

// Stop stops the control plane.
func (c *Cluster) Stop() error { return c.Env.Stop() }

// Main runs a test package's tests against one shared Cluster, stored in
// *into, and exits with their result.
func Main(m *testing.M, into **Cluster, opts ...Option) {
	c, err := Start(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*into = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// WriteKubeconfig writes a kubeconfig for an admin of the cluster into dir,
// with namespace as its context's default (none when empty), for processes
// the tests start.
func (c *Cluster) WriteKubeconfig(dir, namespace string) (string, error) {
	user, err := c.Env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return "", err
	}
	for _, ctx := range cfg.Contexts {
		ctx.Namespace = namespace
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}
