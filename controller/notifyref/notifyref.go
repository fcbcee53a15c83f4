// Package notifyref writes the notify Secret of a run: the URLs and
// signing keys of its notification targets, copied from the Secrets the
// resource's spec.notify references, for its notify step to mount. They
// never go into the Workflow: a URL often embeds a token.
package notifyref

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/internal/runsecret"
	"github.com/backflow-dev/backflow/stages/notify"
)

// LabelNotifyRun marks a notify Secret backflow wrote.
const LabelNotifyRun = "backflow.dev/notify-run"

// SecretName is the name of the notify Secret of the Workflow with UID uid:
// compiler.RunNotifySecret as Argo renders it.
func SecretName(uid types.UID) string {
	return strings.Replace(compiler.RunNotifySecret, "{{workflow.uid}}", string(uid), 1)
}

// Ensure writes the notify Secret of a run whose spec has targets, once:
// the run's notifications go to the URLs its Secrets held when it started.
// A reference that cannot be read leaves its target out of the Secret,
// with a Warning Event on the resource; the notify step then reports the
// target as not delivered. A Secret of that name that backflow did not
// write is never overwritten.
func Ensure(ctx context.Context, c client.Client, rec record.EventRecorder, owner client.Object, wf *wfv1.Workflow, targets []v1.NotifyTarget) error {
	if len(targets) == 0 {
		return nil
	}
	var secret corev1.Secret
	err := c.Get(ctx, client.ObjectKey{Namespace: wf.Namespace, Name: SecretName(wf.UID)}, &secret)
	switch {
	case err == nil:
		if !runsecret.Written(&secret, wf, LabelNotifyRun) {
			rec.Eventf(owner, corev1.EventTypeWarning, string(v1.EventNotificationFailed),
				"A Secret %s exists that backflow did not write for Workflow %s; it is left as it is, and the run's notifications may not be sent", secret.Name, wf.Name)
		}
		return nil
	case !apierrors.IsNotFound(err):
		return err
	}
	secrets := notify.Secrets{}
	for _, t := range targets {
		sec, problems := read(ctx, c, wf.Namespace, t)
		for _, p := range problems {
			rec.Eventf(owner, corev1.EventTypeWarning, string(v1.EventNotificationFailed), "Notify target %s: %s; its notifications cannot be sent", t.Name, p)
		}
		if len(problems) == 0 {
			secrets[t.Name] = sec
		}
	}
	data, err := json.Marshal(secrets)
	if err != nil {
		return err
	}
	secret = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: wf.Namespace, Name: SecretName(wf.UID), Labels: runsecret.Labels(LabelNotifyRun, "true"),
			// Owned, not controlled: the Secret goes with the Workflow.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: wfv1.SchemeGroupVersion.String(), Kind: "Workflow", Name: wf.Name, UID: wf.UID, BlockOwnerDeletion: ptr(false),
			}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{notify.SecretKey: data},
	}
	if err := c.Create(ctx, &secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the notify Secret %s: %w", secret.Name, err)
	}
	return nil
}

// read reads the URLs and key a target references, and what is wrong with
// them (never their values).
func read(ctx context.Context, c client.Client, namespace string, t v1.NotifyTarget) (notify.Secret, []string) {
	var sec notify.Secret
	var problems []string
	get := func(field string, ref *v1.SecretKeySelector, into *string) {
		if ref == nil {
			return
		}
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, &s); err != nil {
			problems = append(problems, fmt.Sprintf("%s: reading Secret %s: %s", field, ref.Name, apierrors.ReasonForError(err)))
			return
		}
		v, ok := s.Data[ref.Key]
		if !ok || len(v) == 0 {
			problems = append(problems, fmt.Sprintf("%s: Secret %s has no key %s", field, ref.Name, ref.Key))
			return
		}
		*into = strings.TrimSpace(string(v))
	}
	switch {
	case t.Webhook != nil:
		get("webhook.urlSecretRef", &t.Webhook.URLSecretRef, &sec.URL)
		get("webhook.signingKeySecretRef", t.Webhook.SigningKeySecretRef, &sec.SigningKey)
	case t.Slack != nil:
		get("slack.urlSecretRef", &t.Slack.URLSecretRef, &sec.URL)
	case t.DeadMansSwitch != nil:
		d := t.DeadMansSwitch
		get("deadMansSwitch.startURLSecretRef", d.StartURLSecretRef, &sec.StartURL)
		get("deadMansSwitch.successURLSecretRef", d.SuccessURLSecretRef, &sec.SuccessURL)
		get("deadMansSwitch.failURLSecretRef", d.FailURLSecretRef, &sec.FailURL)
	}
	return sec, problems
}

// Delete deletes the notify Secret of a Workflow that has finished, as
// secrets, the cache of Secret metadata, knows it (runsecret.Delete).
func Delete(ctx context.Context, secrets client.Reader, c client.Writer, wf *wfv1.Workflow) error {
	return runsecret.Delete(ctx, secrets, c, wf, SecretName(wf.UID), LabelNotifyRun)
}

func ptr[T any](v T) *T { return &v }
