// Package agekeys provides the age identities of encryption.age.generate:
// the controller creates one in the named Secret when that Secret does not
// exist, and otherwise uses the identity it finds, never changing it.
package agekeys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/namespace"
)

// AnnotationCreatedFor names the resource whose reconcile created the
// Secret, for whoever finds it later.
const AnnotationCreatedFor = "backflow.dev/created-for"

// InvalidError says the Secret exists but holds no usable identity.
type InvalidError struct {
	Field, Secret, Why string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s: Secret %s exists but %s; backflow never changes an existing Secret: put an age identity (age-keygen) under the key %q, or delete the Secret to have one generated (backups encrypted to its old identity then need that identity to be restored)",
		e.Field, e.Secret, e.Why, v1.AgeIdentityKey)
}

// Reason is the condition reason of an InvalidError.
func Reason(err error) (v1.ConditionReason, bool) {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return v1.ReasonAgeIdentityInvalid, true
	}
	return "", false
}

// Ensure returns the recipient of the identity in the Secret that
// encryption.age.generate names (field is that field's path, for messages), in the
// namespace of owner (a resource of kind): the Secret's own identity when it exists, a new one,
// created with an Event on owner, when it does not. It returns "" when age
// generates nothing. The Secret has no owner reference: it must outlive
// the resource, or the backups could no longer be decrypted.
func Ensure(ctx context.Context, c client.Client, recorder record.EventRecorder, owner client.Object, kind, field string, e *v1.Encryption) (string, error) {
	if e == nil || e.Age == nil || e.Age.Generate == nil {
		return "", nil
	}
	a := e.Age
	key := client.ObjectKey{Namespace: owner.GetNamespace(), Name: a.Generate.SecretName}
	var existing corev1.Secret
	err := c.Get(ctx, key, &existing)
	if err == nil {
		return recipientOf(&existing, field)
	}
	if !apierrors.IsNotFound(err) {
		return "", err
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", err
	}
	recipient := id.Recipient().String()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace, Name: key.Name,
			Labels:      map[string]string{namespace.LabelManagedBy: namespace.ManagedBy},
			Annotations: map[string]string{AnnotationCreatedFor: fmt.Sprintf("%s %s", kind, owner.GetName())},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			// age-keygen's format, so that `age -d -i` reads the key as it is.
			v1.AgeIdentityKey:  fmt.Appendf(nil, "# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), recipient, id.String()),
			v1.AgeRecipientKey: []byte(recipient + "\n"),
		},
	}
	if err := c.Create(ctx, secret); apierrors.IsAlreadyExists(err) {
		// Another reconcile created it first: use the one that is there.
		if err := c.Get(ctx, key, &existing); err != nil {
			return "", err
		}
		return recipientOf(&existing, field)
	} else if err != nil {
		return "", err
	}
	recorder.Eventf(owner, corev1.EventTypeNormal, string(v1.EventAgeIdentityCreated),
		"Created an age identity in Secret %s for %s (recipient %s); back it up: without it the backups cannot be decrypted", key.Name, field, recipient)
	return recipient, nil
}

// recipientOf is the recipient of the one X25519 identity in the Secret.
func recipientOf(s *corev1.Secret, field string) (string, error) {
	invalid := func(why string) error { return &InvalidError{Field: field, Secret: s.Name, Why: why} }
	data, ok := s.Data[v1.AgeIdentityKey]
	if !ok {
		return "", invalid(fmt.Sprintf("has no key %q", v1.AgeIdentityKey))
	}
	ids, err := age.ParseIdentities(strings.NewReader(string(data)))
	if err != nil {
		// age's error may quote the key: never in a status.
		return "", invalid(fmt.Sprintf("its key %q holds no age identity (AGE-SECRET-KEY-1...)", v1.AgeIdentityKey))
	}
	if len(ids) != 1 {
		return "", invalid(fmt.Sprintf("its key %q holds %d identities, not one", v1.AgeIdentityKey, len(ids)))
	}
	x, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return "", invalid(fmt.Sprintf("its key %q holds an identity that is not an X25519 one", v1.AgeIdentityKey))
	}
	return x.Recipient().String(), nil
}
