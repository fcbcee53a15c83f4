package notify

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver records what an httptest server got, and answers with the
// statuses given in turn (then 200).
type receiver struct {
	mu       sync.Mutex
	requests []recorded
	statuses []int
}

type recorded struct {
	method, path string
	header       http.Header
	body         []byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests = append(r.requests, recorded{req.Method, req.URL.Path, req.Header.Clone(), body})
	status := http.StatusOK
	if n := len(r.requests); n <= len(r.statuses) {
		status = r.statuses[n-1]
	}
	r.mu.Unlock()
	w.WriteHeader(status)
}

func serve(t *testing.T, statuses ...int) (*receiver, string) {
	rec := &receiver{statuses: statuses}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

var failedRun = Run{
	Event: EventFailed, Kind: "Backup", Namespace: "shop", Name: "orders-1", Workflow: "orders-1", Phase: "Failed",
	// As Argo renders {{workflow.failures}}: quoted, the DAG, the retry node
	// and its attempts.
	Failures: strconv.Quote(`[{"displayName":"orders-1","message":"child failed","phase":"Failed","finishedAt":"2026-12-01T10:00:09Z"},` +
		`{"displayName":"dump","message":"retryStrategy.expression evaluated to false","phase":"Failed","finishedAt":"2026-12-01T10:00:08Z"},` +
		`{"displayName":"dump(1)","message":"connecting to postgres: connection refused","phase":"Failed","finishedAt":"2026-12-01T10:00:08Z"},` +
		`{"displayName":"dump(0)","message":"first attempt","phase":"Failed","finishedAt":"2026-12-01T10:00:04Z"}]`),
	Duration: "9.4321", StartedAt: "2026-12-01T10:00:00Z",
	Steps: []string{"pre-hook", "dump", "verify", "post-hook", "rotate"},
}

func TestPayloadPicksTheFailedStepAndItsNewestAttempt(t *testing.T) {
	p := PayloadOf(failedRun, time.Date(2026, 12, 1, 10, 0, 10, 0, time.UTC))
	if p.FailedStep != "dump" || p.Message != "connecting to postgres: connection refused" {
		t.Fatalf("failed step %q, message %q", p.FailedStep, p.Message)
	}
	if len(p.Failures) != 1 || p.Failures[0].FinishedAt != "2026-12-01T10:00:08Z" {
		t.Fatalf("failures: %+v", p.Failures)
	}
	if p.DurationSeconds == nil || *p.DurationSeconds != 9.4 || p.Time != "2026-12-01T10:00:10Z" {
		t.Fatalf("duration %v, time %s", p.DurationSeconds, p.Time)
	}
	if p.Size != nil || p.Key != "" {
		t.Fatalf("a failed dump has no object: %+v", p)
	}
	// The retry node ends after its last attempt, and may come first.
	r := failedRun
	r.Failures = `[{"displayName":"dump","message":"retryStrategy.expression evaluated to false","phase":"Failed","finishedAt":"2026-12-01T10:00:09Z"},` +
		`{"displayName":"dump(0)","message":"connecting to postgres: connection refused","phase":"Failed","finishedAt":"2026-12-01T10:00:08Z"}]`
	if q := PayloadOf(r, time.Now()); q.Message != "connecting to postgres: connection refused" || q.Failures[0].FinishedAt != "2026-12-01T10:00:09Z" {
		t.Fatalf("retry node listed first: message %q, failures %+v", q.Message, q.Failures)
	}
	// Unquoted, as a test or another caller may pass it.
	unquoted, _ := strconv.Unquote(failedRun.Failures)
	r.Failures = unquoted
	if q := PayloadOf(r, time.Now()); q.FailedStep != "dump" {
		t.Fatalf("unquoted failures: %+v", q)
	}
}

func TestWebhookIsSignedOverTimestampAndBody(t *testing.T) {
	rec, url := serve(t)
	key := "s3cret-signing-key"
	now := time.Unix(1796104800, 0)
	s := &Sender{Now: func() time.Time { return now }, Delivery: "uid-1"}
	p := PayloadOf(failedRun, now)
	out := s.Send(context.Background(), []Target{{Name: "ops", Type: TypeWebhook, On: []string{EventFailed}}},
		Secrets{"ops": {URL: url + "/hook", SigningKey: key}}, p)
	if len(out) != 1 || !out[0].Delivered || out[0].Attempts != 1 {
		t.Fatalf("deliveries: %+v", out)
	}
	got := rec.requests[0]
	ts := got.header.Get(HeaderTimestamp)
	if ts != "1796104800" || !Verify([]byte(key), ts, got.body, got.header.Get(HeaderSignature)) {
		t.Fatalf("timestamp %q signature %q do not verify", ts, got.header.Get(HeaderSignature))
	}
	if Verify([]byte("another key"), ts, got.body, got.header.Get(HeaderSignature)) || Verify([]byte(key), "1796104801", got.body, got.header.Get(HeaderSignature)) {
		t.Fatal("the signature verifies with another key or timestamp")
	}
	if got.header.Get(HeaderDelivery) != "uid-1/Failed" || got.header.Get(HeaderEvent) != EventFailed || got.method != http.MethodPost {
		t.Fatalf("headers %v", got.header)
	}
	var body Payload
	if err := json.Unmarshal(got.body, &body); err != nil || body.FailedStep != "dump" || body.Kind != "Backup" || body.Namespace != "shop" {
		t.Fatalf("body %s (%v)", got.body, err)
	}
}

func TestUnsignedWebhookHasNoSignature(t *testing.T) {
	rec, url := serve(t)
	out := (&Sender{}).Send(context.Background(), []Target{{Name: "ops", Type: TypeWebhook, On: []string{EventFailed}}},
		Secrets{"ops": {URL: url}}, PayloadOf(failedRun, time.Now()))
	if !out[0].Delivered || rec.requests[0].header.Get(HeaderSignature) != "" {
		t.Fatalf("%+v %v", out, rec.requests[0].header)
	}
}

func TestOnlyTargetsOfTheEventAreSent(t *testing.T) {
	rec, url := serve(t)
	targets := []Target{
		{Name: "starts", Type: TypeWebhook, On: []string{EventStarted}},
		{Name: "failures", Type: TypeSlack, On: []string{EventFailed, EventSucceeded}},
	}
	out := (&Sender{}).Send(context.Background(), targets, Secrets{"starts": {URL: url + "/a"}, "failures": {URL: url + "/b"}}, PayloadOf(failedRun, time.Now()))
	if len(out) != 1 || out[0].Target != "failures" || len(rec.requests) != 1 || rec.requests[0].path != "/b" {
		t.Fatalf("deliveries %+v, requests %d", out, len(rec.requests))
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(rec.requests[0].body, &msg); err != nil || !strings.Contains(msg.Text, "Backup shop/orders-1 failed: step dump") || len(msg.Blocks) != 2 || msg.Blocks[0].Type != "section" {
		t.Fatalf("slack message %s", rec.requests[0].body)
	}
}

func TestDeadMansSwitchPingsTheEventsURL(t *testing.T) {
	rec, url := serve(t)
	secrets := Secrets{"hc": {StartURL: url + "/uuid/start", SuccessURL: url + "/uuid", FailURL: url + "/uuid/fail"}}
	targets := []Target{{Name: "hc", Type: TypeDeadMansSwitch, On: []string{EventStarted, EventSucceeded, EventFailed}}}
	s := &Sender{}
	for _, event := range []string{EventStarted, EventSucceeded, EventFailed} {
		r := failedRun
		r.Event = event
		if out := s.Send(context.Background(), targets, secrets, PayloadOf(r, time.Now())); !out[0].Delivered {
			t.Fatalf("%s: %+v", event, out)
		}
	}
	var paths []string
	for _, r := range rec.requests {
		paths = append(paths, r.method+" "+r.path)
	}
	if strings.Join(paths, ",") != "POST /uuid/start,POST /uuid,POST /uuid/fail" {
		t.Fatalf("pings %v", paths)
	}
}

func TestRetriesTransientAnswersUntilAccepted(t *testing.T) {
	rec, url := serve(t, http.StatusBadGateway, http.StatusTooManyRequests)
	out := (&Sender{Backoff: time.Millisecond}).Send(context.Background(), []Target{{Name: "ops", Type: TypeWebhook, On: []string{EventFailed}}},
		Secrets{"ops": {URL: url}}, PayloadOf(failedRun, time.Now()))
	if !out[0].Delivered || out[0].Attempts != 3 || len(rec.requests) != 3 {
		t.Fatalf("%+v after %d requests", out, len(rec.requests))
	}
	if rec.requests[0].header.Get(HeaderDelivery) != rec.requests[2].header.Get(HeaderDelivery) {
		t.Fatal("a retry names another delivery")
	}
}

func TestARefusalIsNotRetried(t *testing.T) {
	rec, url := serve(t, http.StatusForbidden)
	out := (&Sender{Backoff: time.Millisecond}).Send(context.Background(), []Target{{Name: "ops", Type: TypeSlack, On: []string{EventFailed}}},
		Secrets{"ops": {URL: url + "/services/T000/B000/tok3n"}}, PayloadOf(failedRun, time.Now()))
	if out[0].Delivered || out[0].Attempts != 1 || len(rec.requests) != 1 || !strings.Contains(out[0].Error, "403") {
		t.Fatalf("%+v", out)
	}
	if strings.Contains(out[0].Error, "tok3n") {
		t.Fatalf("the error names the URL: %s", out[0].Error)
	}
}

func TestAnUnreachableTargetGivesUpAfterMaxAttemptsWithoutItsURL(t *testing.T) {
	// A port nothing listens on: connection refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	secretURL := "http://" + addr + "/hook?token=very-secret-token"
	out := (&Sender{Backoff: time.Millisecond}).Send(context.Background(), []Target{{Name: "ops", Type: TypeWebhook, On: []string{EventFailed}}},
		Secrets{"ops": {URL: secretURL, SigningKey: "k"}}, PayloadOf(failedRun, time.Now()))
	if out[0].Delivered || out[0].Attempts != MaxAttempts {
		t.Fatalf("%+v", out)
	}
	if strings.Contains(out[0].Error, "very-secret-token") || strings.Contains(out[0].Error, "/hook") || !strings.Contains(out[0].Error, "refused") {
		t.Fatalf("error %q", out[0].Error)
	}
}

func TestTheBudgetBoundsTheRetries(t *testing.T) {
	rec, url := serve(t, 500, 500, 500, 500, 500)
	// The first wait is as long as the whole budget: what is left of it
	// after the first request is shorter, so no second one is made.
	out := (&Sender{Backoff: time.Minute, Budget: time.Minute}).Send(context.Background(),
		[]Target{{Name: "ops", Type: TypeWebhook, On: []string{EventFailed}}}, Secrets{"ops": {URL: url}}, PayloadOf(failedRun, time.Now()))
	if out[0].Delivered || out[0].Attempts != 1 || len(rec.requests) != 1 || !strings.Contains(out[0].Error, "budget") || !strings.Contains(out[0].Error, "500") {
		t.Fatalf("%+v after %d requests", out, len(rec.requests))
	}
}

func TestATargetWithoutItsSecretIsReported(t *testing.T) {
	out := (&Sender{}).Send(context.Background(), []Target{{Name: "ops", Type: TypeWebhook, On: []string{EventFailed}}}, Secrets{}, PayloadOf(failedRun, time.Now()))
	if out[0].Delivered || out[0].Attempts != 0 || out[0].Error == "" {
		t.Fatalf("%+v", out)
	}
}
