package namespace

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
)

// Errors that say why the accounts cannot be provided; the reconcilers turn
// them into condition reasons (Reason).
var (
	ErrNotAllowed = errors.New("namespace not allowed")
	ErrConflict   = errors.New("an object backflow did not create is in the way")
)

// Reason is the condition reason for an error of Provide that fails the
// resource, and false for any other error (which is retried).
func Reason(err error) (v1.ConditionReason, bool) {
	switch {
	case errors.Is(err, ErrNotAllowed):
		return v1.ReasonNamespaceNotAllowed, true
	case errors.Is(err, ErrConflict):
		return v1.ReasonAccountConflict, true
	}
	return "", false
}

// The label that marks what backflow provides in a namespace: only objects
// that carry it are updated or deleted.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "backflow"
)

// Managed selects the objects backflow provides; the manager caches only
// those ServiceAccounts and RoleBindings.
func Managed() labels.Selector { return labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy}) }

// TokenSecret is the Secret holding the executor account's token. Argo
// mounts the executor's token from a Secret (by default, this name) into the
// wait container; since Kubernetes 1.24 no such Secret is made for a
// ServiceAccount by itself, so backflow creates it and Kubernetes' token
// controller fills it.
const TokenSecret = compiler.ExecutorServiceAccount + ".service-account-token"

// Config says where the accounts are provided and what they are bound to.
type Config struct {
	Policy Policy
	// WorkflowClusterRole is the chart's ClusterRole for Argo's executor
	// (workflowtaskresults create and patch), bound to
	// compiler.ExecutorServiceAccount.
	WorkflowClusterRole string
	// HookClusterRole is the chart's ClusterRole for exec hooks (pods get
	// and list, pods/exec create), bound to compiler.HookServiceAccount;
	// empty when exec hooks are off: there is no hook account then.
	HookClusterRole string
}

// Accounts provides the service accounts of backflow's Workflows in the
// namespaces its Policy admits.
type Accounts struct {
	// Client reads ServiceAccounts and RoleBindings from a cache that holds
	// only backflow's (Managed), and Secrets from the API server.
	Client client.Client
	// APIReader reads past the cache: an object the cache does not hold
	// may exist without backflow's label.
	APIReader client.Reader
	Config

	// locks hold one lock per namespace, which Provide and Release take:
	// Release asks the API server whether a resource exists and removes the
	// accounts under it, so it cannot take away the accounts that Provide
	// just made for a Workflow about to be created.
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (a *Accounts) lock(namespace string) func() {
	a.mu.Lock()
	if a.locks == nil {
		a.locks = map[string]*sync.Mutex{}
	}
	l := a.locks[namespace]
	if l == nil {
		l = &sync.Mutex{}
		a.locks[namespace] = l
	}
	a.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// account is one ServiceAccount backflow provides, with the ClusterRole its
// RoleBinding binds.
type account struct{ name, clusterRole string }

func (a *Accounts) accounts() []account {
	out := []account{{compiler.ExecutorServiceAccount, a.WorkflowClusterRole}}
	if a.HookClusterRole != "" {
		out = append(out, account{compiler.HookServiceAccount, a.HookClusterRole})
	}
	return out
}

// Provide makes sure the accounts exist in a namespace, as they should be,
// before a Workflow or CronWorkflow is created there. It fails with
// ErrNotAllowed when the Policy does not admit the namespace, and with
// ErrConflict when an object of one of their names exists that backflow did
// not create.
func (a *Accounts) Provide(ctx context.Context, namespace string) error {
	var ns corev1.Namespace
	if err := a.Client.Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
		return err
	}
	if !a.Policy.Admits(&ns) {
		return fmt.Errorf("%w: %s", ErrNotAllowed, a.Policy.refusal(&ns))
	}
	if !ns.DeletionTimestamp.IsZero() {
		return fmt.Errorf("namespace %s is being deleted", namespace)
	}
	defer a.lock(namespace)()
	for _, acc := range a.accounts() {
		if err := a.ensure(ctx, serviceAccount(namespace, acc.name), nil); err != nil {
			return err
		}
		if acc.name == compiler.ExecutorServiceAccount {
			if err := a.ensure(ctx, tokenSecret(namespace), nil); err != nil {
				return err
			}
		}
		if err := a.ensure(ctx, roleBinding(namespace, acc), sameBinding); err != nil {
			return err
		}
	}
	if a.HookClusterRole == "" {
		// Exec hooks were turned off since: the hook account goes.
		return a.remove(ctx, namespace, compiler.HookServiceAccount)
	}
	return nil
}

// Remove deletes the accounts backflow provided in a namespace, and
// nothing it did not create.
func (a *Accounts) Remove(ctx context.Context, namespace string) error {
	defer a.lock(namespace)()
	return a.remove(ctx, namespace, compiler.ExecutorServiceAccount, compiler.HookServiceAccount)
}

// Release is Remove unless a Backup, BackupSchedule or Restore exists in
// the namespace, as the API server says, not a cache that may not have
// seen one created a moment ago.
func (a *Accounts) Release(ctx context.Context, namespace string) error {
	defer a.lock(namespace)()
	if used, err := inUse(ctx, a.APIReader, namespace); err != nil || used {
		return err
	}
	return a.remove(ctx, namespace, compiler.ExecutorServiceAccount, compiler.HookServiceAccount)
}

// inUse says whether a Backup, BackupSchedule or Restore exists in a
// namespace.
func inUse(ctx context.Context, reader client.Reader, namespace string) (bool, error) {
	for _, list := range []client.ObjectList{&v1.BackupList{}, &v1.BackupScheduleList{}, &v1.RestoreList{}} {
		if err := reader.List(ctx, list, client.InNamespace(namespace), client.Limit(1)); err != nil {
			return false, err
		}
		if meta.LenList(list) > 0 {
			return true, nil
		}
	}
	return false, nil
}

func (a *Accounts) remove(ctx context.Context, namespace string, names ...string) error {
	for _, name := range names {
		objs := []client.Object{
			&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}},
		}
		if name == compiler.ExecutorServiceAccount {
			objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: TokenSecret}})
		}
		for _, obj := range objs {
			if err := a.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); apierrors.IsNotFound(err) {
				continue
			} else if err != nil {
				return err
			}
			if !isManaged(obj) {
				continue
			}
			// Deleting the very object read: one recreated meanwhile by
			// someone else is not backflow's.
			err := a.Client.Delete(ctx, obj, client.Preconditions{UID: ptr(obj.GetUID())})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return err
			}
			log.FromContext(ctx).Info("removed what backflow provided in the namespace", "kind", fmt.Sprintf("%T", obj), "name", obj.GetName())
		}
	}
	return nil
}

// ensure creates want, or makes the object of its name that backflow
// created match it (same says whether it does; nil when any does). A
// RoleBinding's roleRef cannot change: one that differs is replaced.
func (a *Accounts) ensure(ctx context.Context, want client.Object, same func(have, want client.Object) bool) error {
	have := want.DeepCopyObject().(client.Object)
	err := a.Client.Get(ctx, client.ObjectKeyFromObject(want), have)
	switch {
	case apierrors.IsNotFound(err):
		err := a.Client.Create(ctx, want)
		if !apierrors.IsAlreadyExists(err) {
			if err == nil {
				log.FromContext(ctx).Info("provided in the namespace", "kind", fmt.Sprintf("%T", want), "name", want.GetName())
			}
			return err
		}
		// Not in the cache, which holds only backflow's: someone else's,
		// or one backflow created that the cache has not seen yet.
		if err := a.APIReader.Get(ctx, client.ObjectKeyFromObject(want), have); err != nil {
			return err
		}
		if !isManaged(have) {
			return conflict(want)
		}
		return nil
	case err != nil:
		return err
	case !isManaged(have):
		return conflict(want)
	case same == nil || same(have, want):
		return nil
	}
	// Only what backflow created reaches here: it is replaced, not adopted.
	if err := a.Client.Delete(ctx, have, client.Preconditions{UID: ptr(have.GetUID())}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return a.Client.Create(ctx, want)
}

func conflict(obj client.Object) error {
	kind := fmt.Sprintf("%T", obj)
	switch obj.(type) {
	case *corev1.ServiceAccount:
		kind = "ServiceAccount"
	case *rbacv1.RoleBinding:
		kind = "RoleBinding"
	case *corev1.Secret:
		kind = "Secret"
	}
	return fmt.Errorf("%w: a %s %s exists in namespace %s without the label %s=%s, so backflow did not create it and leaves it alone; "+
		"backflow's Workflows need that name for the account it provides: delete or rename it",
		ErrConflict, kind, obj.GetName(), obj.GetNamespace(), LabelManagedBy, ManagedBy)
}

func isManaged(obj client.Object) bool { return obj.GetLabels()[LabelManagedBy] == ManagedBy }

func managedMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{LabelManagedBy: ManagedBy}}
}

func serviceAccount(namespace, name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: managedMeta(namespace, name)}
}

func tokenSecret(namespace string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: managedMeta(namespace, TokenSecret), Type: corev1.SecretTypeServiceAccountToken}
	s.Annotations = map[string]string{corev1.ServiceAccountNameKey: compiler.ExecutorServiceAccount}
	return s
}

// roleBinding binds an account to the chart's ClusterRole in its namespace
// alone. A RoleBinding to a ClusterRole, not a Role: creating a Role needs
// every permission it grants, and the controller would then hold pods/exec
// in every namespace; binding a ClusterRole needs only the verb bind on
// exactly that ClusterRole (resourceNames in the chart), so the controller
// can hand out these two roles and nothing else.
func roleBinding(namespace string, acc account) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: managedMeta(namespace, acc.name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: acc.clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: acc.name, Namespace: namespace}},
	}
}

func sameBinding(have, want client.Object) bool {
	h, w := have.(*rbacv1.RoleBinding), want.(*rbacv1.RoleBinding)
	return h.RoleRef == w.RoleRef && equality.Semantic.DeepEqual(h.Subjects, w.Subjects)
}

func ptr[T any](v T) *T { return &v }
