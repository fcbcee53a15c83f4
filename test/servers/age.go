package servers

import (
	"os"
	"path/filepath"

	"filippo.io/age"
)

// AgeIdentity makes a fresh age identity, writes it to identity.txt in dir
// (mode 0600) and returns the file and the recipient that encrypts to it.
func AgeIdentity(dir string) (file, recipient string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", "", err
	}
	file = filepath.Join(dir, "identity.txt")
	if err := os.WriteFile(file, []byte(id.String()+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return file, id.Recipient().String(), nil
}
