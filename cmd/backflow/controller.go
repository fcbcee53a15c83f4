package main

import (
	goflag "flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/controller/backup"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/controller/storageref"
)

func newControllerCommand() *cobra.Command {
	opts := controller.Options{Compiler: compiler.DefaultOptions()}
	var (
		namespaces   string
		kubeconfig   string
		qps          float32
		burst        int
		clientImages map[string]string
		pullPolicy   string
		successTTL   time.Duration
		failureTTL   time.Duration
		referencing  string
		wfNamespaces string
		wfSelector   string
		zapOpts      = zap.Options{}
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the backflow controller",
		Long: `Runs the controller: it compiles Backups, BackupSchedules and Restores into Argo
Workflows and CronWorkflows, mirrors them into the resources' status, checks
BackupStorages, and serves Prometheus metrics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
			if namespaces != "" {
				opts.Namespaces = strings.Split(namespaces, ",")
			}
			for key, image := range clientImages {
				if _, known := opts.Compiler.ClientImages[key]; !known {
					return fmt.Errorf("--client-image: no engine has a client image %q; the keys are %s", key, clientImageKeys(opts.Compiler))
				}
				opts.Compiler.ClientImages[key] = image
			}
			policy, err := namespace.NewPolicy(strings.Split(wfNamespaces, ","), wfSelector)
			if err != nil {
				return fmt.Errorf("--workflow-namespaces, --workflow-namespace-selector: %w", err)
			}
			opts.Workflows.Policy = policy
			// The hook account's ClusterRole is what the chart renders
			// with hooks.exec: without it, exec hooks are off.
			opts.Compiler.ExecHooks = opts.Workflows.HookClusterRole != ""
			if err := opts.Compiler.CheckImages(); err != nil {
				return fmt.Errorf("--image, --client-image or --allowed-images: %w", err)
			}
			opts.Compiler.ImagePullPolicy = corev1.PullPolicy(pullPolicy)
			opts.Compiler.SuccessTTLSeconds = int32(successTTL.Seconds())
			opts.Compiler.FailureTTLSeconds = int32(failureTTL.Seconds())
			switch referencing {
			case "", "None":
				opts.Compiler.TemplateReferencing = compiler.TemplateReferencingInline
			case "Strict", "Secure":
				opts.Compiler.TemplateReferencing = compiler.TemplateReferencingStrict
			default:
				return fmt.Errorf("--template-referencing: %q is none of None, Strict and Secure", referencing)
			}
			var cfg *rest.Config
			if kubeconfig != "" {
				cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
			} else {
				cfg, err = ctrl.GetConfig()
			}
			if err != nil {
				return err
			}
			cfg.QPS, cfg.Burst = qps, burst
			mgr, err := controller.NewManager(cfg, opts)
			if err != nil {
				return err
			}
			ctrl.Log.WithName("setup").Info("starting", "version", version, "image", opts.Compiler.Image)
			if err := mgr.Start(cmd.Context()); err != nil {
				return fmt.Errorf("controller: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", "address of the metrics endpoint (0 to turn it off)")
	f.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", "address of the health and readiness probes")
	f.BoolVar(&opts.LeaderElection, "leader-elect", false, "elect a leader, for several replicas")
	f.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, or $KUBECONFIG)")
	// client-go's defaults (20/30 in controller-runtime) throttle a resync of
	// a thousand Backups to well over a minute.
	f.Float32Var(&qps, "kube-api-qps", 100, "requests per second to the Kubernetes API")
	f.IntVar(&burst, "kube-api-burst", 200, "burst of requests to the Kubernetes API")
	f.StringVar(&namespaces, "namespaces", "", "comma-separated namespaces to watch (default: all)")
	f.StringVar(&opts.Compiler.Image, "image", opts.Compiler.Image, "backflow image the workflow steps run")
	f.StringVar(&pullPolicy, "image-pull-policy", string(corev1.PullIfNotPresent), "pull policy of the step images")
	f.StringToStringVar(&clientImages, "client-image", nil, "database client image per key ("+clientImageKeys(opts.Compiler)+"), e.g. postgresql=postgres:17-alpine (repeatable)")
	f.StringVar(&wfNamespaces, "workflow-namespaces", namespace.AllNamespaces, "comma-separated namespaces Workflows may run in, or * for all: there the controller provides the ServiceAccounts "+
		compiler.ExecutorServiceAccount+" and "+compiler.HookServiceAccount+" while a backflow resource exists; elsewhere a resource fails at once")
	f.StringVar(&wfSelector, "workflow-namespace-selector", "", "label selector a namespace must also match for Workflows to run in it")
	f.StringVar(&opts.Workflows.WorkflowClusterRole, "workflow-cluster-role", compiler.ExecutorServiceAccount, "ClusterRole (workflowtaskresults create, patch) bound in each namespace to Argo's executor account "+compiler.ExecutorServiceAccount)
	f.StringVar(&opts.Workflows.HookClusterRole, "hook-cluster-role", compiler.HookServiceAccount, "ClusterRole (pods get, list; pods/exec create) bound in each namespace to the exec hooks' account "+compiler.HookServiceAccount+"; empty: exec hooks are off and fail at once")
	f.StringSliceVar(&opts.Compiler.AllowedImages, "allowed-images", nil, "user images a resource may name besides --image and the client images (a command's, a container hook's, a database source's or target's own), comma-separated or repeated; empty allows any in inline mode and none with --template-referencing Strict")
	f.DurationVar(&successTTL, "workflow-success-ttl", time.Duration(opts.Compiler.SuccessTTLSeconds)*time.Second, "how long Argo keeps a succeeded Workflow")
	f.DurationVar(&failureTTL, "workflow-failure-ttl", time.Duration(opts.Compiler.FailureTTLSeconds)*time.Second, "how long Argo keeps a failed Workflow")
	f.StringVar(&referencing, "template-referencing", "None", "Argo's workflowRestrictions.templateReferencing: with Strict or Secure, Workflows name the run templates backflow-backup-run and backflow-restore-run and pass only arguments")
	f.DurationVar(&opts.StorageCheckInterval, "storage-check-interval", 5*time.Minute, "how often BackupStorage buckets are checked")
	f.DurationVar(&opts.StorageTimeout, "storage-timeout", storageref.DefaultTimeout, "how long one request of the controller to a storage (a bucket check, a read or delete of the finalizer) may take")
	f.DurationVar(&opts.DeleteTimeout, "delete-timeout", backup.DefaultDeleteTimeout, "how long the finalizer of a Backup with deletionPolicy Delete tries a failing storage before it gives up, leaves the object and lets the Backup go (with a Warning Event)")
	f.IntVar(&opts.MaxConcurrentReconciles, "max-concurrent-reconciles", controller.DefaultMaxConcurrentReconciles, "how many resources of each kind are reconciled at once")
	gofs := goflag.NewFlagSet("zap", goflag.ContinueOnError)
	zapOpts.BindFlags(gofs)
	f.AddGoFlagSet(gofs)
	return cmd
}

// clientImageKeys are the keys of the engines' client images.
func clientImageKeys(o compiler.Options) string {
	return strings.Join(slices.Sorted(maps.Keys(o.ClientImages)), ", ")
}
