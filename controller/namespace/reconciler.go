package namespace

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// Reconciler keeps the accounts of each namespace in step with its backflow
// resources: present (and as they should be) while one exists and the
// Policy admits the namespace, gone otherwise. The resources' reconcilers
// call Provide themselves before they create a Workflow, so that none waits
// for this one.
type Reconciler struct {
	*Accounts
	// Watched says whether the controller watches a namespace (all when
	// nil): in another, it sees no resources and must not take the
	// accounts away from another controller's.
	Watched func(namespace string) bool
}

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ns corev1.Namespace
	if err := r.Client.Get(ctx, req.NamespacedName, &ns); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ns.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // everything in it goes
	}
	if !r.Policy.Admits(&ns) {
		return ctrl.Result{}, r.Remove(ctx, ns.Name)
	}
	used, err := inUse(ctx, r.Client, ns.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !used {
		return ctrl.Result{}, r.Release(ctx, ns.Name)
	}
	err = r.Provide(ctx, ns.Name)
	if _, refused := Reason(err); refused {
		// The resources' reconcilers report it on each of them.
		log.FromContext(ctx).Info("cannot provide the accounts", "namespace", ns.Name, "reason", err.Error())
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, err
}

// SetupWithManager watches Namespaces (their labels may change what the
// Policy admits), the creation and deletion of backflow's resources, and the
// accounts themselves, so that one deleted or changed is provided again.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	byNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.GetNamespace()}}}
	})
	// A resource's own changes (its status, mostly) change nothing here.
	createdOrDeleted := builder.WithPredicates(predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }})
	watched := predicate.NewPredicateFuncs(func(o client.Object) bool { return r.Watched == nil || r.Watched(o.GetName()) })
	return ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Namespace{}, builder.WithPredicates(watched)).
		Named("namespace").
		Watches(&v1.Backup{}, byNamespace, createdOrDeleted).
		Watches(&v1.BackupSchedule{}, byNamespace, createdOrDeleted).
		Watches(&v1.Restore{}, byNamespace, createdOrDeleted).
		Watches(&corev1.ServiceAccount{}, byNamespace).
		Watches(&rbacv1.RoleBinding{}, byNamespace).
		Complete(r)
}
