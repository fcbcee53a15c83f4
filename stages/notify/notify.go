// Package notify sends the notifications of a run: a signed JSON body to a
// generic webhook, a message to a Slack-compatible incoming webhook, a ping
// to a dead man's switch. The run's Workflow calls it from its exit handler
// (and its running hook, for Started); a delivery that fails is reported,
// never returned as the run's failure.
package notify

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Types of target, as a Target and the status name them.
const (
	TypeWebhook        = "webhook"
	TypeSlack          = "slack"
	TypeDeadMansSwitch = "deadMansSwitch"
)

// Events, as the API names them (v1alpha1.NotifyEvent).
const (
	EventStarted   = "Started"
	EventSucceeded = "Succeeded"
	EventFailed    = "Failed"
)

// Target is the configuration of a target that is no secret, which the
// Workflow carries as a parameter: what it is and what it hears about.
type Target struct {
	Name string   `json:"name"`
	Type string   `json:"type"`
	On   []string `json:"on"`
}

// Wants says whether the target hears about an event.
func (t Target) Wants(event string) bool { return slices.Contains(t.On, event) }

// Secret is what a target's URLs and signing key are, read from the run's
// notify Secret (never from the Workflow): URL for a webhook or Slack, the
// three URLs of a dead man's switch.
type Secret struct {
	URL        string `json:"url,omitempty"`
	SigningKey string `json:"signingKey,omitempty"`
	StartURL   string `json:"startURL,omitempty"`
	SuccessURL string `json:"successURL,omitempty"`
	FailURL    string `json:"failURL,omitempty"`
}

// Secrets are the targets' secrets by target name: the JSON the notify
// Secret holds under its one key.
type Secrets map[string]Secret

// SecretKey is the key of the notify Secret that holds Secrets.
const SecretKey = "targets.json"

// Payload is the JSON body a generic webhook receives.
type Payload struct {
	// Event is Started, Succeeded or Failed.
	Event string `json:"event"`
	// Kind, Namespace and Name are the resource the run is of.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Workflow is the Argo Workflow that ran it.
	Workflow string `json:"workflow"`
	// Phase is the Workflow's as Argo reports it (Running, Succeeded,
	// Failed, Error).
	Phase string `json:"phase"`
	// FailedStep and Message say which step failed and why.
	FailedStep string `json:"failedStep,omitempty"`
	Message    string `json:"message,omitempty"`
	// Key, Size and Checksum are the object the run wrote (a Backup's dump)
	// or restored, once known.
	Key      string `json:"key,omitempty"`
	Size     *int64 `json:"size,omitempty"`
	Checksum string `json:"checksum,omitempty"`
	// StartedAt and DurationSeconds are the Workflow's.
	StartedAt       string   `json:"startedAt,omitempty"`
	DurationSeconds *float64 `json:"durationSeconds,omitempty"`
	// Failures are the failed steps, with when each ended.
	Failures []Failure `json:"failures,omitempty"`
	// Time is when the notification was sent (RFC 3339).
	Time string `json:"time"`
}

// Failure is a failed step of the run.
type Failure struct {
	Step       string `json:"step"`
	Phase      string `json:"phase"`
	Message    string `json:"message,omitempty"`
	FinishedAt string `json:"finishedAt,omitempty"`
}

// Run is what the Workflow passes the notify step about itself.
type Run struct {
	Event, Kind, Namespace, Name, Workflow, Phase string
	// Failures is Argo's {{workflow.failures}}.
	Failures string
	// Duration is Argo's {{workflow.duration}}, in seconds.
	Duration            string
	StartedAt           string
	Key, Size, Checksum string
	// Steps are the names of the run's steps, for picking the failed step
	// out of Argo's failures (which also lists the DAG and each attempt).
	Steps []string
}

// argoFailure is an entry of {{workflow.failures}}.
type argoFailure struct {
	DisplayName string `json:"displayName"`
	Message     string `json:"message"`
	Phase       string `json:"phase"`
	FinishedAt  string `json:"finishedAt"`
}

// attemptSuffix is the "(n)" Argo appends to a retried step's attempts.
var attemptSuffix = regexp.MustCompile(`\(\d+\)$`)

// PayloadOf is the payload of a run at time now.
func PayloadOf(r Run, now time.Time) Payload {
	p := Payload{
		Event: r.Event, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Workflow: r.Workflow, Phase: r.Phase,
		Key: r.Key, Checksum: r.Checksum, StartedAt: r.StartedAt, Time: now.UTC().Format(time.RFC3339),
	}
	if n, err := strconv.ParseInt(r.Size, 10, 64); err == nil {
		p.Size = &n
	}
	if d, err := strconv.ParseFloat(r.Duration, 64); err == nil {
		d = float64(int64(d*10)) / 10
		p.DurationSeconds = &d
	}
	p.Failures = failures(r.Failures, r.Steps)
	for _, f := range p.Failures {
		// The first step that failed is the run's failure.
		p.FailedStep, p.Message = f.Step, f.Message
		break
	}
	return p
}

// failures reads Argo's failures: one per failed step, with the message of
// its newest attempt, in the order the steps ended.
func failures(raw string, steps []string) []Failure {
	var entries []argoFailure
	if err := json.Unmarshal([]byte(raw), &entries); err != nil {
		// Argo quotes the list so that its quotes survive substitution.
		unquoted, uerr := strconv.Unquote(raw)
		if uerr != nil || json.Unmarshal([]byte(unquoted), &entries) != nil {
			return nil
		}
	}
	byStep := map[string]*Failure{}
	// The message of a step's newest attempt says why it failed; its retry
	// node's ("No more retries left", "retryStrategy.expression evaluated
	// to false") only that it was not tried again.
	attemptMessage, attemptAt := map[string]string{}, map[string]string{}
	var order []string
	for _, e := range entries {
		step := attemptSuffix.ReplaceAllString(e.DisplayName, "")
		if !slices.Contains(steps, step) {
			continue
		}
		f, ok := byStep[step]
		if !ok {
			f = &Failure{Step: step}
			byStep[step] = f
			order = append(order, step)
		}
		switch {
		case e.DisplayName == step:
			f.Phase = e.Phase
			if f.Message == "" {
				f.Message = e.Message
			}
		case e.Message != "" && e.FinishedAt >= attemptAt[step]:
			// Against the newest attempt so far, not the step's end: the
			// retry node ends after its last attempt, and Argo lists the
			// nodes in no order.
			attemptMessage[step], attemptAt[step] = e.Message, e.FinishedAt
		}
		if f.Phase == "" {
			f.Phase = e.Phase
		}
		if e.FinishedAt > f.FinishedAt {
			f.FinishedAt = e.FinishedAt
		}
	}
	for step, msg := range attemptMessage {
		byStep[step].Message = msg
	}
	slices.SortStableFunc(order, func(a, b string) int { return strings.Compare(byStep[a].FinishedAt, byStep[b].FinishedAt) })
	out := make([]Failure, 0, len(order))
	for _, step := range order {
		out = append(out, *byStep[step])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Summary is the one line of text a Slack message and a dead man's switch
// ping carry.
func (p Payload) Summary() string {
	what := fmt.Sprintf("%s %s/%s", p.Kind, p.Namespace, p.Name)
	switch p.Event {
	case EventStarted:
		return what + " started"
	case EventFailed:
		if p.FailedStep != "" {
			return fmt.Sprintf("%s failed: step %s: %s", what, p.FailedStep, p.Message)
		}
		return fmt.Sprintf("%s failed (Workflow %s %s)", what, p.Workflow, p.Phase)
	}
	msg := what + " succeeded"
	if p.Key != "" {
		msg += ": " + p.Key
	}
	if p.Size != nil {
		msg += fmt.Sprintf(" (%d bytes)", *p.Size)
	}
	if p.DurationSeconds != nil {
		msg += fmt.Sprintf(" in %gs", *p.DurationSeconds)
	}
	return msg
}
