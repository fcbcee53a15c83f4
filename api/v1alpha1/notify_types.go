package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// NotifyEvent is a moment of a run a notification target hears about.
// +kubebuilder:validation:Enum=Started;Succeeded;Failed
type NotifyEvent string

const (
	// NotifyStarted: the run's Workflow started.
	NotifyStarted NotifyEvent = "Started"
	// NotifySucceeded: the run succeeded.
	NotifySucceeded NotifyEvent = "Succeeded"
	// NotifyFailed: the run failed (a step failed, or the Workflow did).
	NotifyFailed NotifyEvent = "Failed"
)

// MaxNotifyTargets bounds spec.notify.
const MaxNotifyTargets = 8

// NotifyTarget is one place a run reports to, on the events it lists: a
// generic webhook, a Slack-compatible incoming webhook or a dead man's
// switch. Its URLs are read from Secrets of the resource's namespace: they
// often embed a token, and never appear in the Workflow.
// +kubebuilder:validation:XValidation:rule="[has(self.webhook), has(self.slack), has(self.deadMansSwitch)].filter(x, x).size() == 1",message="a notify target sets exactly one of webhook, slack, deadMansSwitch"
// +kubebuilder:validation:XValidation:rule="!has(self.deadMansSwitch) || !('Started' in self.events) || has(self.deadMansSwitch.startURLSecretRef)",message="deadMansSwitch.startURLSecretRef is required when events lists Started"
// +kubebuilder:validation:XValidation:rule="!has(self.deadMansSwitch) || !('Succeeded' in self.events) || has(self.deadMansSwitch.successURLSecretRef)",message="deadMansSwitch.successURLSecretRef is required when events lists Succeeded"
// +kubebuilder:validation:XValidation:rule="!has(self.deadMansSwitch) || !('Failed' in self.events) || has(self.deadMansSwitch.failURLSecretRef)",message="deadMansSwitch.failURLSecretRef is required when events lists Failed"
type NotifyTarget struct {
	// Name of the target, unique in the list: Events, the status and the
	// metric name it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Events the target hears about. (Not "on": YAML 1.1 parsers, kubectl's
	// among them, read an unquoted on as true.)
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	// +listType=set
	On []NotifyEvent `json:"events"`
	// A generic webhook: a JSON body POSTed, signed with HMAC-SHA256 when a
	// signing key is given.
	// +optional
	Webhook *WebhookNotify `json:"webhook,omitempty"`
	// A Slack-compatible incoming webhook: a message with text and blocks.
	// +optional
	Slack *SlackNotify `json:"slack,omitempty"`
	// A dead man's switch (healthchecks.io and the like): a POST to the URL
	// of the event, which the service expects at every run and alerts on
	// when it misses.
	// +optional
	DeadMansSwitch *DeadMansSwitchNotify `json:"deadMansSwitch,omitempty"`
}

// WebhookNotify is a generic webhook target.
type WebhookNotify struct {
	// Secret key holding the URL.
	URLSecretRef SecretKeySelector `json:"urlSecretRef"`
	// Secret key holding the HMAC-SHA256 key that signs each request (the
	// X-Backflow-Signature header). Without it requests are not signed.
	// +optional
	SigningKeySecretRef *SecretKeySelector `json:"signingKeySecretRef,omitempty"`
}

// SlackNotify is a Slack-compatible incoming webhook target.
type SlackNotify struct {
	// Secret key holding the incoming webhook's URL.
	URLSecretRef SecretKeySelector `json:"urlSecretRef"`
}

// DeadMansSwitchNotify is a dead man's switch: one URL per event, each
// required when the target's events list its event.
type DeadMansSwitchNotify struct {
	// Secret key holding the URL pinged when the run starts.
	// +optional
	StartURLSecretRef *SecretKeySelector `json:"startURLSecretRef,omitempty"`
	// Secret key holding the URL pinged when the run succeeds.
	// +optional
	SuccessURLSecretRef *SecretKeySelector `json:"successURLSecretRef,omitempty"`
	// Secret key holding the URL pinged when the run fails.
	// +optional
	FailURLSecretRef *SecretKeySelector `json:"failURLSecretRef,omitempty"`
}

// NotificationStatus is what the run's notify step reported about one
// delivery.
type NotificationStatus struct {
	// Target, by name.
	Target string `json:"target"`
	// Event delivered.
	Event NotifyEvent `json:"event"`
	// Kind of target: webhook, slack or deadMansSwitch.
	Type string `json:"type"`
	// Whether the target accepted it (a 2xx answer).
	Delivered bool `json:"delivered"`
	// Requests made.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// Why it was not delivered (never the URL).
	// +optional
	Message string `json:"message,omitempty"`
	// When the notify step finished with it.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// EventNotificationFailed: a notification could not be delivered (a
// Warning); the run's outcome is not changed by it.
const EventNotificationFailed EventReason = "NotificationFailed"
