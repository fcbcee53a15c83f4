// Package controller assembles backflow's reconcilers into a
// controller-runtime manager.
package controller

import (
	"fmt"
	"slices"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/backup"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/controller/restore"
	"github.com/backflow-dev/backflow/controller/schedule"
	"github.com/backflow-dev/backflow/controller/storage"
)

// Options configure the manager.
type Options struct {
	Compiler compiler.Options
	// Namespaces to watch; all when empty.
	Namespaces []string
	// Workflows says in which namespaces Workflows may run and which
	// ClusterRoles the accounts the controller provides there are bound
	// to; exec hooks (Compiler.ExecHooks) need a HookClusterRole.
	Workflows namespace.Config
	// MetricsAddr and ProbeAddr are where metrics and probes are served
	// ("0" turns one off).
	MetricsAddr string
	ProbeAddr   string
	// LeaderElection makes one of several replicas active.
	LeaderElection          bool
	LeaderElectionNamespace string
	// StorageCheckInterval is how often a BackupStorage's bucket is checked.
	StorageCheckInterval time.Duration
	// StorageTimeout bounds each request the controller makes to a storage
	// (storageref.DefaultTimeout when zero).
	StorageTimeout time.Duration
	// DeleteTimeout is how long the Backup finalizer tries a failing storage
	// before it leaves the object (backup.DefaultDeleteTimeout when zero).
	DeleteTimeout time.Duration
	// MaxConcurrentReconciles is how many resources of each kind are
	// reconciled at once (DefaultMaxConcurrentReconciles when zero): a
	// finalizer waiting for a slow storage does not hold up the others.
	MaxConcurrentReconciles int
	// Now is the clock of the run Secrets' renewals; time.Now when nil.
	// Tests move it on.
	Now func() time.Time
	// AllowRestart lets a process start a second manager after the first
	// stopped (controller names are unique per process otherwise); tests use
	// it to restart the controller.
	AllowRestart bool
}

// DefaultMaxConcurrentReconciles is Options.MaxConcurrentReconciles when
// none is set.
const DefaultMaxConcurrentReconciles = 4

// Scheme knows the kinds backflow reads and writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1.AddToScheme, wfv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// cacheOptions are what the manager's cache holds, of the namespaces
// (all when empty).
func cacheOptions(namespaces []string) cache.Options {
	opts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			// The controller reads only the ServiceAccounts and RoleBindings
			// it provides; the others are no business of its memory.
			&corev1.ServiceAccount{}: {Label: namespace.Managed()},
			&rbacv1.RoleBinding{}:    {Label: namespace.Managed()},
			// Secrets are cached as metadata only (the client never reads
			// them from the cache), and even of that not what may hold their
			// data: kubectl apply copies a Secret whole into the
			// last-applied-configuration annotation.
			&corev1.Secret{}: {Transform: withoutAnnotations},
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// withoutAnnotations is a cache transform that drops an object's
// annotations and managed fields, which nothing reads from the cache.
func withoutAnnotations(obj any) (any, error) {
	if o, err := meta.Accessor(obj); err == nil {
		o.SetAnnotations(nil)
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// NewManager builds a manager with every backflow reconciler.
func NewManager(cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	if opts.Workflows.WorkflowClusterRole == "" {
		return nil, fmt.Errorf("no ClusterRole for the workflow account %s", compiler.ExecutorServiceAccount)
	}
	if opts.Compiler.ExecHooks != (opts.Workflows.HookClusterRole != "") {
		return nil, fmt.Errorf("exec hooks need a ClusterRole for the hook account %s, and a ClusterRole for it needs exec hooks (exec hooks %t, hook ClusterRole %q)",
			compiler.HookServiceAccount, opts.Compiler.ExecHooks, opts.Workflows.HookClusterRole)
	}
	workers := opts.MaxConcurrentReconciles
	if workers <= 0 {
		workers = DefaultMaxConcurrentReconciles
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  Scheme(),
		Cache:                   cacheOptions(opts.Namespaces),
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:  opts.ProbeAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        "controller.backflow.dev",
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// Secrets are read when needed, never cached: a cluster's Secrets do
		// not belong in the controller's memory.
		Client:     client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}}}},
		Controller: config.Controller{SkipNameValidation: &opts.AllowRestart, MaxConcurrentReconciles: workers},
	})
	if err != nil {
		return nil, err
	}
	recorder := mgr.GetEventRecorderFor("backflow")
	// The metadata of Secrets (never their data) is cached: the storage
	// reconciler watches it to recheck a BackupStorage whose Secret changed,
	// and the Backup and Restore reconcilers read there whether a finished
	// run's Secrets are left to delete, which a restart asks for every run.
	// It is read from the cache itself: the client reads Secrets, even
	// their metadata, past it (DisableFor). The cache starts that informer
	// with the controllers that watch it and waits for it to sync before it
	// answers.
	secretMetadata := mgr.GetCache()
	accounts := &namespace.Accounts{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Config: opts.Workflows}
	var watched func(string) bool
	if len(opts.Namespaces) > 0 {
		watched = func(ns string) bool { return slices.Contains(opts.Namespaces, ns) }
	}
	reconcilers := []interface{ SetupWithManager(ctrl.Manager) error }{
		&backup.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), SecretMetadata: secretMetadata, Recorder: recorder, Compiler: opts.Compiler, Accounts: accounts,
			StorageTimeout: opts.StorageTimeout, DeleteTimeout: opts.DeleteTimeout, Now: opts.Now},
		&schedule.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder, Compiler: opts.Compiler, Accounts: accounts},
		&restore.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), SecretMetadata: secretMetadata, Recorder: recorder, Compiler: opts.Compiler, Accounts: accounts,
			StorageTimeout: opts.StorageTimeout, Now: opts.Now},
		&storage.Reconciler{Client: mgr.GetClient(), Recorder: recorder, Interval: opts.StorageCheckInterval, Timeout: opts.StorageTimeout},
		&namespace.Reconciler{Accounts: accounts, Watched: watched},
	}
	for _, r := range reconcilers {
		if err := r.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up %T: %w", r, err)
		}
	}
	if opts.ProbeAddr != "" && opts.ProbeAddr != "0" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}
