package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// ParseRecipients parses age recipients given one per string or one per line
// (blank lines and # comments are skipped).
func ParseRecipients(lines ...string) ([]age.Recipient, []string, error) {
	var recipients []age.Recipient
	var names []string
	for _, text := range lines {
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			r, err := age.ParseX25519Recipient(line)
			if err != nil {
				// age's error repeats the input, which may be a secret key
				// pasted in the wrong place.
				return nil, nil, fmt.Errorf("%q is not an age recipient: expected age1 followed by 58 characters", abbreviate(line))
			}
			recipients = append(recipients, r)
			names = append(names, line)
		}
	}
	return recipients, names, nil
}

// ParseIdentities parses an age identity file (AGE-SECRET-KEY-1... lines).
// The error never repeats the file's content.
func ParseIdentities(r io.Reader) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(r)
	if err != nil {
		return nil, errors.New("the age identity is not valid: expected lines of AGE-SECRET-KEY-1")
	}
	return ids, nil
}

// Fingerprint identifies a recipient in manifests and messages without
// repeating the key: the first 16 hex digits of the sha256 of its text.
func Fingerprint(recipient string) string {
	sum := sha256.Sum256([]byte(recipient))
	return hex.EncodeToString(sum[:8])
}

// NewEncryptor returns a writer that encrypts into w to every recipient.
// Close finishes the age stream; it does not close w.
func NewEncryptor(w io.Writer, recipients []age.Recipient) (io.WriteCloser, error) {
	if len(recipients) == 0 {
		return nopWriteCloser{w}, nil
	}
	return age.Encrypt(w, recipients...)
}

// ErrWrongIdentity says that none of the identities given can decrypt.
var ErrWrongIdentity = errors.New("the age identity does not match any recipient the backup was encrypted to")

// NewDecryptor returns a reader of the plaintext of the age stream r.
func NewDecryptor(r io.Reader, identities []age.Identity) (io.Reader, error) {
	d, err := age.Decrypt(r, identities...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, ErrWrongIdentity
		}
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	return d, nil
}

func abbreviate(s string) string {
	if len(s) > 12 {
		return s[:12] + "..."
	}
	return s
}
