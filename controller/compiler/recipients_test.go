package compiler

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// encryption.age.generate compiles to the recipient the reconciler resolved
// (besides the inline ones) for the dump, and to its Secret's identity key
// for verify, in both modes; the dump step is never given the Secret, and
// DumpRecipients reads back what the dump encrypts to.
func TestGeneratedAgeIdentityCompiles(t *testing.T) {
	st := exampleStorage(t, examples(t))
	const generated = "age1yng9s9l0m2m4g38qca3ga5qul620vjkvwmmhthg7jupr6f3vgp0qepxhw3"
	offline := "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	b := &v1.Backup{Spec: v1.BackupSpec{
		Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat", "/data"}}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: st.Storage.Name}},
		Encryption: &v1.Encryption{Age: &v1.AgeEncryption{
			Recipients: []string{offline}, Generate: &v1.AgeGenerate{SecretName: "shop-age"},
		}},
	}}
	b.Name, b.Namespace = "b", "apps"
	for _, mode := range []TemplateReferencing{TemplateReferencingInline, TemplateReferencingStrict} {
		t.Run(cmp.Or(string(mode), "Inline"), func(t *testing.T) {
			opts := testOptions()
			opts.TemplateReferencing = mode
			if _, err := Backup(BackupInput{Backup: b, Storage: st}, opts); err == nil || !strings.Contains(err.Error(), "spec.encryption.age.generate") {
				t.Errorf("compiled without the generated recipient: %v", err)
			}
			wf, err := Backup(BackupInput{Backup: b, Storage: st, AgeRecipient: generated}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := DumpRecipients(wf); !slices.Equal(got, []string{offline, generated}) {
				t.Errorf("DumpRecipients %v", got)
			}
			args := map[string]string{}
			for _, p := range wf.Spec.Arguments.Parameters {
				args[p.Name] = p.Value.String()
			}
			for _, task := range wf.Spec.Templates {
				if task.DAG == nil {
					continue
				}
				for _, task := range task.DAG.Tasks {
					for _, p := range task.Arguments.Parameters {
						args[task.Name+"/"+p.Name] = p.Value.String()
					}
				}
			}
			identityMounted := false
			for name, value := range args {
				isDump := strings.HasPrefix(name, StepDump+"/") || strings.HasPrefix(name, StepDump+"-")
				if isDump && strings.Contains(value, "shop-age") {
					t.Errorf("the dump step is given the identity's Secret: %s = %s", name, value)
				}
				isVerify := strings.HasPrefix(name, StepVerify+"/") || strings.HasPrefix(name, StepVerify+"-")
				identityMounted = identityMounted || (isVerify && strings.Contains(value, "shop-age"))
			}
			if !identityMounted {
				data, _ := json.Marshal(args)
				t.Errorf("the verify step is not given the identity's Secret: %s", data)
			}
		})
	}
}
