package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
)

func generating(secret string) v1.BackupSpec {
	spec := backupSpec()
	spec.Encryption = &v1.Encryption{Age: &v1.AgeEncryption{Generate: &v1.AgeGenerate{SecretName: secret}}}
	return spec
}

func getSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// recipientOf parses the one identity of a Secret's identity key.
func recipientOf(t *testing.T, s *corev1.Secret) (identity, recipient string) {
	t.Helper()
	ids, err := age.ParseIdentities(strings.NewReader(string(s.Data[v1.AgeIdentityKey])))
	if err != nil || len(ids) != 1 {
		t.Fatalf("Secret %s: %d identities, %v", s.Name, len(ids), err)
	}
	x := ids[0].(*age.X25519Identity)
	return x.String(), x.Recipient().String()
}

// noIdentityIn fails the test when the identity appears anywhere in a
// Workflow (its spec, parameters, status) or a CronWorkflow.
func noIdentityIn(t *testing.T, what string, obj any, identity string) {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), identity) || strings.Contains(string(data), "AGE-SECRET-KEY") {
		t.Errorf("%s holds the age identity", what)
	}
}

// encryption.age.generate: the controller creates the identity once, in a
// Secret that no owner reference ties to the Backup; the dump pod gets the
// recipient only, verify the identity; the status names the recipient. A
// later Backup with the same Secret, and a Secret the user made, are used
// as they are, never written.
func TestGeneratedAgeIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)

	createBackup(t, ns, "first", generating("shop-age"))
	var dumpRefs, verifyRefs []string
	stack.InspectSteps(t, ns, "first", []string{compiler.StepDump, compiler.StepVerify}, func(step string, pod *corev1.Pod) {
		if step == compiler.StepDump {
			dumpRefs = argotest.SecretReferences(pod)
		} else {
			verifyRefs = argotest.SecretReferences(pod)
		}
	})
	b := waitForPhase(t, ns, "first", v1.PhaseSucceeded)
	secret := getSecret(t, ns, "shop-age")
	identity, recipient := recipientOf(t, secret)
	if len(secret.OwnerReferences) != 0 {
		t.Errorf("the generated Secret has owners %v: it would be deleted with them, and the backups could not be decrypted", secret.OwnerReferences)
	}
	if got := strings.TrimSpace(string(secret.Data[v1.AgeRecipientKey])); got != recipient {
		t.Errorf("the Secret's %s is %q, its identity's recipient %s", v1.AgeRecipientKey, got, recipient)
	}
	if e := b.Status.Encryption; e == nil || !slices.Equal(e.Recipients, []string{recipient}) || e.IdentitySecret != "shop-age" {
		t.Errorf("status.encryption %+v, want recipient %s of Secret shop-age", e, recipient)
	}
	if len(dumpRefs) == 0 {
		t.Errorf("the dump pod reads no Secret: not the pod of a step")
	}
	for _, ref := range dumpRefs {
		if strings.Contains(ref, "shop-age") {
			t.Errorf("the dump pod reads the identity's Secret: %s", ref)
		}
	}
	if want := "volume age-identity: shop-age/" + v1.AgeIdentityKey; !slices.Contains(verifyRefs, want) {
		t.Errorf("the verify pod reads %v, want %s", verifyRefs, want)
	}
	wf := stack.Workflow(t, ns, "first")
	noIdentityIn(t, "the Workflow", wf, identity)
	if got := compiler.DumpRecipients(wf); !slices.Equal(got, []string{recipient}) {
		t.Errorf("the dump step encrypts to %v, want %s", got, recipient)
	}
	argotest.WaitFor(t, "the AgeIdentityCreated Event", 10*time.Second, func() (bool, string) {
		e := events(t, ns, "first")[string(v1.EventAgeIdentityCreated)]
		return strings.HasPrefix(e, corev1.EventTypeNormal+": ") && strings.Contains(e, "shop-age") && strings.Contains(e, recipient), e
	})
	noIdentityIn(t, "the Event", events(t, ns, "first"), identity)

	// The same Secret again: found, not written.
	createBackup(t, ns, "second", generating("shop-age"))
	b = waitForPhase(t, ns, "second", v1.PhaseSucceeded)
	if again := getSecret(t, ns, "shop-age"); again.ResourceVersion != secret.ResourceVersion {
		t.Errorf("the Secret was written again (resourceVersion %s, was %s)", again.ResourceVersion, secret.ResourceVersion)
	}
	if e := b.Status.Encryption; e == nil || !slices.Equal(e.Recipients, []string{recipient}) {
		t.Errorf("second Backup: status.encryption %+v, want %s", e, recipient)
	}
	if _, created := events(t, ns, "second")[string(v1.EventAgeIdentityCreated)]; created {
		t.Errorf("an AgeIdentityCreated Event for a Secret that existed")
	}

	// A Secret the user made, with an identity of age-keygen and no
	// recipient key, besides an inline recipient (an offline key).
	own, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	offline, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mine"},
		Data: map[string][]byte{v1.AgeIdentityKey: []byte("# created by age-keygen\n" + own.String() + "\n")}}
	if err := stack.Client.Create(ctx, mine); err != nil {
		t.Fatal(err)
	}
	spec := generating("mine")
	spec.Encryption.Age.Recipients = []string{offline.Recipient().String()}
	createBackup(t, ns, "theirs", spec)
	b = waitForPhase(t, ns, "theirs", v1.PhaseSucceeded)
	if e := b.Status.Encryption; e == nil || !slices.Equal(e.Recipients, []string{offline.Recipient().String(), own.Recipient().String()}) {
		t.Errorf("status.encryption %+v, want the offline recipient and the Secret's", e)
	}
	if after := getSecret(t, ns, "mine"); after.ResourceVersion != mine.ResourceVersion || len(after.Data) != 1 {
		t.Errorf("the user's Secret was changed: %v", after.Data)
	}

	// A Secret without a usable identity fails the Backup, naming the
	// field, and stays as it is.
	broken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"},
		Data: map[string][]byte{v1.AgeIdentityKey: []byte("AGE-SECRET-KEY-1NOTAKEY")}}
	if err := stack.Client.Create(ctx, broken); err != nil {
		t.Fatal(err)
	}
	createBackup(t, ns, "refused", generating("broken"))
	failedAtOnce(t, ns, "refused", func() *v1.RunStatus { return &getBackup(t, ns, "refused").Status.RunStatus },
		v1.ReasonAgeIdentityInvalid, "spec.encryption.age.generate.secretName")
	if msg := getBackup(t, ns, "refused").Status.Message; strings.Contains(msg, "NOTAKEY") {
		t.Errorf("the message quotes the Secret's content: %s", msg)
	}
	if after := getSecret(t, ns, "broken"); after.ResourceVersion != broken.ResourceVersion {
		t.Errorf("the broken Secret was written")
	}
}

// A BackupSchedule's CronWorkflow encrypts to the identity the controller
// generated for it, and holds no identity; each run's Backup names the
// recipient in its status.
func TestScheduleWithGeneratedAgeIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"}, Spec: v1.BackupScheduleSpec{
		Schedule: "0 3 * * *", Template: v1.BackupTemplate{Spec: generating("nightly-age")}}}
	if err := stack.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	var cron wfv1.CronWorkflow
	argotest.WaitFor(t, "the CronWorkflow", 20*time.Second, func() (bool, string) {
		err := stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "nightly"}, &cron)
		return err == nil, fmt.Sprint(err)
	})
	identity, recipient := recipientOf(t, getSecret(t, ns, "nightly-age"))
	noIdentityIn(t, "the CronWorkflow", &cron, identity)
	argotest.WaitFor(t, "the AgeIdentityCreated Event", 10*time.Second, func() (bool, string) {
		e := events(t, ns, "nightly")[string(v1.EventAgeIdentityCreated)]
		return strings.Contains(e, "nightly-age"), e
	})

	updateSchedule(t, s, func() { s.Annotations = map[string]string{v1.AnnotationTrigger: "now"} })
	var run v1.Backup
	argotest.WaitFor(t, "the triggered run to succeed", 60*time.Second, func() (bool, string) {
		var list v1.BackupList
		_ = stack.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{v1.LabelSchedule: "nightly"})
		for _, b := range list.Items {
			if b.Status.Phase == v1.PhaseSucceeded {
				run = b
				return true, ""
			}
		}
		return false, fmt.Sprint(len(list.Items), " runs")
	})
	if e := run.Status.Encryption; e == nil || !slices.Equal(e.Recipients, []string{recipient}) || e.IdentitySecret != "nightly-age" {
		t.Errorf("the run's status.encryption %+v, want %s of nightly-age", e, recipient)
	}
	noIdentityIn(t, "the run's Workflow", stack.Workflow(t, ns, run.Name), identity)
	if !meta.IsStatusConditionTrue(run.Status.Conditions, v1.ConditionVerified) {
		t.Errorf("the run was not verified: %+v", run.Status.Conditions)
	}

	// A schedule whose Secret holds no identity is not Ready and has no
	// CronWorkflow.
	if err := stack.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty"}, Data: map[string][]byte{"other": []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	refused := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "refused"}, Spec: v1.BackupScheduleSpec{
		Schedule: "0 3 * * *", Template: v1.BackupTemplate{Spec: generating("empty")}}}
	if err := stack.Client.Create(ctx, refused); err != nil {
		t.Fatal(err)
	}
	notReady(t, refused, func() []metav1.Condition { return refused.Status.Conditions }, v1.ReasonAgeIdentityInvalid, "spec.template.spec.encryption.age.generate.secretName")
	noWorkflow(t, ns, "refused", &wfv1.CronWorkflow{})
}
