package compiler

import (
	"errors"
	"fmt"
	"slices"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// ErrImageNotAllowed is the error of a resource that names an image the
// controller's allow-list (Options.AllowedImages) does not hold.
var ErrImageNotAllowed = errors.New("not an allowed image")

// userImage is an image a resource names, with the field that names it.
type userImage struct{ field, image string }

// backupImages are the images a Backup spec (or a BackupSchedule's
// template, under prefix) names: its source's, which the verify step's
// restore test runs in too, and its container hooks'.
func backupImages(prefix string, spec v1.BackupSpec) []userImage {
	var out []userImage
	add := func(field, image string) {
		if image != "" {
			out = append(out, userImage{prefix + field, image})
		}
	}
	if s := spec.Source.PostgreSQL; s != nil {
		add("source.postgresql.image", s.Image)
	}
	if s := spec.Source.MySQL; s != nil {
		add("source.mysql.image", s.Image)
	}
	if s := spec.Source.Command; s != nil {
		add("source.command.image", s.Image)
	}
	return append(out, hookImages(prefix, spec.Hooks)...)
}

func restoreImages(spec v1.RestoreSpec) []userImage {
	var out []userImage
	add := func(field, image string) {
		if image != "" {
			out = append(out, userImage{field, image})
		}
	}
	if t := spec.Target.PostgreSQL; t != nil {
		add("spec.target.postgresql.image", t.Image)
	}
	if t := spec.Target.MySQL; t != nil {
		add("spec.target.mysql.image", t.Image)
	}
	if t := spec.Target.Command; t != nil {
		add("spec.target.command.image", t.Image)
	}
	return append(out, hookImages("spec.", spec.Hooks)...)
}

func hookImages(prefix string, h *v1.Hooks) []userImage {
	if h == nil {
		return nil
	}
	var out []userImage
	for _, hook := range []struct {
		field string
		hook  *v1.Hook
	}{{"hooks.pre", h.Pre}, {"hooks.post", h.Post}} {
		if hook.hook != nil && hook.hook.Container != nil {
			out = append(out, userImage{prefix + hook.field + ".container.image", hook.hook.Container.Image})
		}
	}
	return out
}

// checkImages refuses an image that is neither the backflow image, nor a
// client image, nor in the allow-list. An empty allow-list restricts
// nothing in inline mode, as before it existed; in Strict mode it allows no
// user image, since the run templates would refuse it anyway.
func checkImages(images []userImage, opts Options) error {
	if len(opts.AllowedImages) == 0 && opts.TemplateReferencing != TemplateReferencingStrict {
		return nil
	}
	allowed := opts.RunImages()
	for _, i := range images {
		if !slices.Contains(allowed, i.image) {
			return fmt.Errorf("%s: %s is %w: add it to the chart value workflow.allowedImages (controller flag --allowed-images)", i.field, i.image, ErrImageNotAllowed)
		}
	}
	return nil
}

// CheckBackupImages refuses a Backup spec whose images are not allowed;
// prefix is where the spec lies in its resource ("spec." for a Backup,
// "spec.template.spec." for a BackupSchedule).
func CheckBackupImages(prefix string, spec v1.BackupSpec, opts Options) error {
	return checkImages(backupImages(prefix, spec), opts)
}

// CheckRestoreImages refuses a Restore spec whose images are not allowed.
func CheckRestoreImages(spec v1.RestoreSpec, opts Options) error {
	return checkImages(restoreImages(spec), opts)
}
