// Package schedule reconciles BackupSchedules: it keeps their CronWorkflow in
// step with the spec, gives every Workflow the CronWorkflow starts a Backup
// of the same name, applies the history limits to those Backups, and
// computes the schedule's status.
package schedule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/agekeys"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/controller/status"
	"github.com/backflow-dev/backflow/controller/storageref"
)

// Reconciler reconciles BackupSchedules.
type Reconciler struct {
	client.Client
	// APIReader reads past the cache, to tell a Workflow the cache still
	// shows from one that is gone.
	APIReader client.Reader
	Recorder  record.EventRecorder
	Compiler  compiler.Options
	// Accounts provides the service accounts of the CronWorkflow's runs in
	// the schedule's namespace.
	Accounts *namespace.Accounts
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var s v1.BackupSchedule
	if err := r.Get(ctx, req.NamespacedName, &s); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetSchedule(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !s.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the CronWorkflow and the Backups go with it (owner references)
	}
	// A namespace the controller may not run Workflows in (any more) keeps
	// its CronWorkflow, suspended, and the schedule is not Ready.
	refused := r.Accounts.Provide(ctx, s.Namespace)
	if _, ok := namespace.Reason(refused); refused != nil && !ok {
		return ctrl.Result{}, refused
	}
	cron, err := r.reconcileCronWorkflow(ctx, &s, refused != nil)
	if err == nil {
		err = refused
	}
	ready, err := readyCondition(&s, cron, err)
	if err != nil {
		return ctrl.Result{}, err
	}
	if cron != nil && refused == nil {
		if err := r.trigger(ctx, &s, cron); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.adoptWorkflows(ctx, &s, cron); err != nil {
		return ctrl.Result{}, err
	}
	backups, err := r.applyHistoryLimits(ctx, &s)
	if err != nil {
		return ctrl.Result{}, err
	}
	var computed computedStatus
	readyChanged := false
	if _, err := status.Patch(ctx, r.Client, &s, func() {
		readyChanged = meta.SetStatusCondition(&s.Status.Conditions, ready)
		if cron != nil {
			s.Status.CronWorkflowName = cron.Name
		}
		computed = computeStatus(&s, cron, backups, r.now())
		s.Status = computed.status
	}); err != nil {
		return ctrl.Result{}, err
	}
	if readyChanged && ready.Status == metav1.ConditionFalse {
		r.Recorder.Event(&s, corev1.EventTypeWarning, ready.Reason, ready.Message)
	}
	recordMetrics(&s, computed.interval)
	return ctrl.Result{RequeueAfter: computed.requeue}, nil
}

// readyCondition is the Ready condition for the outcome of
// reconcileCronWorkflow, or the error when it is not one that condition
// reports.
func readyCondition(s *v1.BackupSchedule, cron *wfv1.CronWorkflow, err error) (metav1.Condition, error) {
	ready := metav1.Condition{Type: v1.ConditionReady, ObservedGeneration: s.Generation, Status: metav1.ConditionFalse}
	var reason v1.ConditionReason
	if storageReason, ok := storageref.Reason(err); ok {
		reason, ready.Message = storageReason, err.Error()
	} else if accountsReason, ok := namespace.Reason(err); ok {
		reason, ready.Message = accountsReason, err.Error()
	} else if keyReason, ok := agekeys.Reason(err); ok {
		reason, ready.Message = keyReason, err.Error()
	} else {
		switch {
		case errors.Is(err, compiler.ErrImageNotAllowed):
			reason, ready.Message = v1.ReasonImageNotAllowed, err.Error()
		case errors.Is(err, errInvalidSpec):
			reason, ready.Message = compiler.FailureReason(err), err.Error()
		case err != nil:
			return metav1.Condition{}, err
		case s.Spec.Suspend:
			ready.Status, reason, ready.Message = metav1.ConditionTrue, v1.ReasonSuspended, "CronWorkflow "+cron.Name+" is suspended"
		default:
			ready.Status, reason, ready.Message = metav1.ConditionTrue, v1.ReasonScheduled, "CronWorkflow "+cron.Name+" runs on "+s.Spec.Schedule
		}
	}
	ready.Reason = string(reason)
	return ready, nil
}

var errInvalidSpec = errors.New("invalid spec")

// reconcileCronWorkflow creates or updates the CronWorkflow, suspended
// whatever the spec says when suspend is set.
func (r *Reconciler) reconcileCronWorkflow(ctx context.Context, s *v1.BackupSchedule, suspend bool) (*wfv1.CronWorkflow, error) {
	if _, err := parseSchedule(s.Spec.Schedule, s.Spec.Timezone); err != nil {
		return nil, fmt.Errorf("%w: spec.schedule: %v", errInvalidSpec, err)
	}
	if err := compiler.CheckBackupImages("spec.template.spec.", s.Spec.Template.Spec, r.Compiler); err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidSpec, err)
	}
	access, err := storageref.Resolve(ctx, r.Client, s.Spec.Template.Spec.Storage.StorageReference, s.Namespace)
	if errors.Is(err, storageref.ErrForbidden) {
		return nil, r.suspendCronWorkflow(ctx, s, err)
	}
	if err != nil {
		return nil, err
	}
	recipient, err := agekeys.Ensure(ctx, r.Client, r.Recorder, s, "BackupSchedule", "spec.template.spec.encryption.age.generate.secretName", s.Spec.Template.Spec.Encryption)
	if err != nil {
		return nil, err
	}
	runs, err := r.runs(ctx, s)
	if err != nil {
		return nil, err
	}
	// A run verified since changes the CronWorkflow's expected size: the
	// Backup's change brings the schedule here.
	want, err := compiler.Schedule(compiler.ScheduleInput{Schedule: s, Storage: access, AgeRecipient: recipient, ExpectedSize: lastVerifiedRawSize(runs)}, r.Compiler)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidSpec, err)
	}
	want.Spec.Suspend = want.Spec.Suspend || suspend
	cron := &wfv1.CronWorkflow{ObjectMeta: metav1.ObjectMeta{Namespace: want.Namespace, Name: want.Name}}
	op, err := controllerutil.CreateOrUpdate(ctx, r.Client, cron, func() error {
		if !metav1.IsControlledBy(cron, s) && !cron.CreationTimestamp.IsZero() {
			return fmt.Errorf("%w: a CronWorkflow named %s exists that backflow did not create", errInvalidSpec, cron.Name)
		}
		cron.Labels, cron.Annotations = want.Labels, want.Annotations
		cron.Spec = want.Spec
		return controllerutil.SetControllerReference(s, cron, r.Scheme())
	})
	if err != nil {
		return nil, err
	}
	if op != controllerutil.OperationResultNone {
		log.FromContext(ctx).Info("CronWorkflow "+string(op), "cronworkflow", cron.Name)
	}
	return cron, nil
}

// suspendCronWorkflow suspends the schedule's CronWorkflow, if it has one,
// because its storage no longer admits the namespace (forbidden says so):
// its runs would start without credentials. The next reconcile that finds
// the storage admitting the namespace again writes the spec's suspend back.
// It returns forbidden, saying what it did, or the error that kept it from
// doing it.
func (r *Reconciler) suspendCronWorkflow(ctx context.Context, s *v1.BackupSchedule, forbidden error) error {
	var cron wfv1.CronWorkflow
	if err := r.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, &cron); err != nil {
		if apierrors.IsNotFound(err) {
			return forbidden
		}
		return err
	}
	if !metav1.IsControlledBy(&cron, s) {
		return forbidden
	}
	if !cron.Spec.Suspend {
		patch := client.MergeFrom(cron.DeepCopy())
		cron.Spec.Suspend = true
		if err := r.Patch(ctx, &cron, patch); err != nil {
			return err
		}
		log.FromContext(ctx).Info("suspended the CronWorkflow: its storage no longer admits the namespace", "cronworkflow", cron.Name)
	}
	return fmt.Errorf("%w; CronWorkflow %s is suspended until it does", forbidden, cron.Name)
}

// trigger starts a run now when the schedule's trigger annotation holds a
// value not seen before. The Workflow's name derives from the value, so each
// value starts exactly one run whatever happens to the controller.
func (r *Reconciler) trigger(ctx context.Context, s *v1.BackupSchedule, cron *wfv1.CronWorkflow) error {
	token := s.Annotations[v1.AnnotationTrigger]
	if token == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(token))
	name := fmt.Sprintf("%s-manual-%s", s.Name, hex.EncodeToString(sum[:])[:8])
	wf := &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: name, Labels: map[string]string{}, Annotations: map[string]string{}},
		Spec:       *cron.Spec.WorkflowSpec.DeepCopy(),
	}
	if md := cron.Spec.WorkflowMetadata; md != nil {
		for k, v := range md.Labels {
			wf.Labels[k] = v
		}
		for k, v := range md.Annotations {
			wf.Annotations[k] = v
		}
	}
	wf.Annotations[v1.AnnotationTrigger] = token
	if err := controllerutil.SetControllerReference(s, wf, r.Scheme()); err != nil {
		return err
	}
	err := r.Create(ctx, wf)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return err
	}
	r.Recorder.Eventf(s, corev1.EventTypeNormal, string(v1.EventTriggered), "Started Workflow %s by request (%s=%s)", name, v1.AnnotationTrigger, token)
	return nil
}

// SetupWithManager watches BackupSchedules, their CronWorkflows, the
// Workflows and Backups of their runs, and the storages they use.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	bySchedule := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		name := o.GetLabels()[v1.LabelSchedule]
		if name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
	})
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1.BackupSchedule{}, StorageIndex, storageOf); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.BackupSchedule{}).
		Named("backupschedule").
		Owns(&wfv1.CronWorkflow{}).
		Watches(&wfv1.Workflow{}, bySchedule).
		Watches(&v1.Backup{}, bySchedule).
		Watches(&v1.BackupStorage{}, handler.EnqueueRequestsFromMapFunc(r.schedulesUsing)).
		// A namespace's labels may decide whether its schedules may run.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.schedulesIn)).
		Complete(r)
}

// StorageIndex indexes BackupSchedules by the BackupStorage their template
// references, as storageref.IndexValue.
const StorageIndex = "backflow.dev/schedule-storage"

// storageOf is what StorageIndex files a BackupSchedule under.
func storageOf(o client.Object) []string {
	s := o.(*v1.BackupSchedule)
	return []string{storageref.IndexValue(s.Spec.Template.Spec.Storage.StorageReference, s.Namespace)}
}

// schedulesIn are the schedules of a namespace that changed.
func (r *Reconciler) schedulesIn(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1.BackupScheduleList
	if err := r.List(ctx, &list, client.InNamespace(o.GetName())); err != nil {
		log.FromContext(ctx).Error(err, "listing the BackupSchedules of a namespace", "namespace", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, s := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
	}
	return reqs
}

// schedulesUsing are the schedules whose template references a storage that
// changed.
func (r *Reconciler) schedulesUsing(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1.BackupScheduleList
	if err := r.List(ctx, &list, client.MatchingFields{StorageIndex: client.ObjectKeyFromObject(o).String()}); err != nil {
		log.FromContext(ctx).Error(err, "listing the BackupSchedules of a BackupStorage", "storage", client.ObjectKeyFromObject(o))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, s := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
	}
	return reqs
}
