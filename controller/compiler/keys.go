package compiler

import (
	"errors"
	"fmt"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/pathtemplate"
)

// defaultSeriesPath is what follows the namespace's prefix in the default
// path of a Backup: a directory per series, an object per run.
const defaultSeriesPath = `{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`

// DefaultPath is the object key template of a Backup that names none in a
// storage with the default namespace prefix; the CRD defaulted
// spec.storage.path to it before storages had a namespacePrefix.
const DefaultPath = v1.DefaultNamespacePrefix + defaultSeriesPath

// KeyError says why a path template or key a resource names cannot be
// used, before any Workflow runs: the condition reason (InvalidPath or
// KeyOutsidePrefix) and the field.
type KeyError struct {
	Reason v1.ConditionReason
	// Field names where the template or key comes from, such as
	// spec.storage.path.
	Field string
	Err   error
}

func (e *KeyError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *KeyError) Unwrap() error { return e.Err }

// keyError is the KeyError for err about field: KeyOutsidePrefix when it
// wraps pathtemplate.ErrOutsidePrefix, InvalidPath otherwise.
func keyError(field string, err error) *KeyError {
	reason := v1.ReasonInvalidPath
	if errors.Is(err, pathtemplate.ErrOutsidePrefix) {
		reason = v1.ReasonKeyOutsidePrefix
	}
	return &KeyError{Reason: reason, Field: field, Err: err}
}

// FailureReason is the condition reason of an error of Backup, Schedule or
// Restore: the KeyError's own, ImageNotAllowed for an image outside the
// allow-list, InvalidSpec for any other.
func FailureReason(err error) v1.ConditionReason {
	var ke *KeyError
	switch {
	case errors.As(err, &ke):
		return ke.Reason
	case errors.Is(err, ErrImageNotAllowed):
		return v1.ReasonImageNotAllowed
	}
	return v1.ReasonInvalidSpec
}

// fieldPathStorage is where a Backup spec names its path template.
const fieldPathStorage = "spec.storage.path"

// backupPath is the path template a Backup spec's dump renders in namespace
// for series, checked before anything runs: it must parse and every key it
// renders must lie inside the namespace's prefix in the storage. An empty
// path, and the old CRD default stored in resources created before the
// storage had a namespacePrefix, are the namespace's prefix followed by
// defaultSeriesPath.
func backupPath(path, namespace, series string, st StorageAccess) (string, error) {
	if path == "" || path == DefaultPath {
		path = st.Storage.NamespacePrefixTemplate() + defaultSeriesPath
	}
	if _, err := pathtemplate.ConfineTemplate(path, st.Storage.NamespacePrefix(namespace), namespace, series); err != nil {
		return "", keyError(fieldPathStorage, fmt.Errorf("path template %q: %w", path, err))
	}
	return path, nil
}
