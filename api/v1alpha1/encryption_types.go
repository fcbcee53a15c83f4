package v1alpha1

// AgeGenerate names the Secret that holds the age identity the controller
// generates for encryption.age.generate.
type AgeGenerate struct {
	// SecretName is the Secret, in the resource's namespace, with the
	// identity under the key "identity" and its recipient under "recipient".
	// The controller creates it (without an owner: it is not deleted with
	// the resource) when it does not exist, and never changes one that does.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	SecretName string `json:"secretName"`
}

// Keys of the Secret of encryption.age.generate.
const (
	// AgeIdentityKey holds the identity (AGE-SECRET-KEY-1...), in age-keygen's
	// format: the file `age -d -i` reads.
	AgeIdentityKey = "identity"
	// AgeRecipientKey holds its recipient (age1...), for people: the
	// controller derives the recipient from the identity.
	AgeRecipientKey = "recipient"
)

// EncryptionStatus is what a backup was encrypted to.
type EncryptionStatus struct {
	// Recipients (age1...) the dump encrypted to: spec.encryption.age's
	// recipients and the one of its generated identity. Recipients read from
	// recipientsSecretRef are not listed here (the manifest records every
	// recipient's fingerprint).
	// +optional
	// +listType=atomic
	Recipients []string `json:"recipients,omitempty"`
	// IdentitySecret is the Secret with the identity that decrypts the
	// backup, when encryption.age.generate made or found it.
	// +optional
	IdentitySecret string `json:"identitySecret,omitempty"`
}

// Identity is the Secret key with the identity that decrypts what age
// encrypts: identitySecretRef, or generate's Secret.
func (a *AgeEncryption) Identity() *SecretKeySelector {
	if a == nil {
		return nil
	}
	if a.Generate != nil {
		return &SecretKeySelector{Name: a.Generate.SecretName, Key: AgeIdentityKey}
	}
	return a.IdentitySecretRef
}

// ReasonAgeIdentityInvalid says that the Secret encryption.age.generate
// names exists but holds no usable age identity.
const ReasonAgeIdentityInvalid ConditionReason = "AgeIdentityInvalid"

// EventAgeIdentityCreated records that the controller generated an age
// identity into a Secret.
const EventAgeIdentityCreated EventReason = "AgeIdentityCreated"
