package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Headers of a generic webhook's request. The signature is
// sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">, keyed by the target's
// signing key; the timestamp is Unix seconds, so that a receiver can refuse
// an old request replayed.
const (
	HeaderSignature = "X-Backflow-Signature"
	HeaderTimestamp = "X-Backflow-Timestamp"
	HeaderEvent     = "X-Backflow-Event"
	HeaderDelivery  = "X-Backflow-Delivery"
)

// Sign is the X-Backflow-Signature of a body sent at timestamp.
func Sign(key []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a request's signature, for receivers (and tests): the
// header as sent, in constant time.
func Verify(key []byte, timestamp string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(key, timestamp, body)), []byte(signature))
}

// Retry policy of a delivery: up to MaxAttempts requests, each bounded by
// RequestTimeout, waiting FirstBackoff and twice as long after each failed
// one (at most MaxBackoff), all within Budget. A target that answers 4xx
// (but 408 and 429) is not asked again: it refused the request.
const (
	MaxAttempts    = 5
	RequestTimeout = 10 * time.Second
	FirstBackoff   = 1 * time.Second
	MaxBackoff     = 8 * time.Second
	Budget         = 60 * time.Second
)

// Sender delivers notifications.
type Sender struct {
	Client *http.Client
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Backoff is the first wait between attempts (FirstBackoff when zero);
	// Budget bounds a delivery's whole time (Budget when zero).
	Backoff, Budget time.Duration
	// Delivery names the run in HeaderDelivery, the same on every retry, so
	// that a receiver can drop a duplicate.
	Delivery string
}

// Delivery is the outcome of one notification to one target, which the
// notify step reports as its output.
type Delivery struct {
	Target    string `json:"target"`
	Type      string `json:"type"`
	Event     string `json:"event"`
	Delivered bool   `json:"delivered"`
	Attempts  int    `json:"attempts"`
	// Error says why it was not delivered, never with the URL.
	Error string `json:"error,omitempty"`
	Time  string `json:"time"`
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// request is one HTTP request of a delivery, built anew for each attempt.
type request struct {
	method, url string
	body        []byte
	header      http.Header
	// secrets are what must not appear in an error: the URL, the key.
	secrets []string
}

// Send delivers the payload to every target that wants its event, at once,
// and reports each delivery. A target whose secret lacks what it needs is
// reported as not delivered.
func (s *Sender) Send(ctx context.Context, targets []Target, secrets Secrets, p Payload) []Delivery {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var out []Delivery
	for _, t := range targets {
		if !t.Wants(p.Event) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := Delivery{Target: t.Name, Type: t.Type, Event: p.Event}
			req, err := s.build(t, secrets[t.Name], p)
			if err == nil {
				d.Attempts, err = s.deliver(ctx, req)
			}
			d.Delivered = err == nil
			if err != nil {
				d.Error = redact(err.Error(), req.secrets)
			}
			d.Time = s.now().UTC().Format(time.RFC3339)
			mu.Lock()
			out = append(out, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// In the order of the targets, whatever order they answered in.
	ordered := make([]Delivery, 0, len(out))
	for _, t := range targets {
		for _, d := range out {
			if d.Target == t.Name {
				ordered = append(ordered, d)
			}
		}
	}
	return ordered
}

// build is the request a target gets for a payload.
func (s *Sender) build(t Target, sec Secret, p Payload) (request, error) {
	header := http.Header{"User-Agent": {"backflow-notify"}, HeaderEvent: {p.Event}}
	if s.Delivery != "" {
		header.Set(HeaderDelivery, s.Delivery+"/"+p.Event)
	}
	switch t.Type {
	case TypeWebhook:
		body, err := json.Marshal(p)
		if err != nil {
			return request{}, err
		}
		header.Set("Content-Type", "application/json")
		r := request{method: http.MethodPost, url: sec.URL, body: body, header: header, secrets: []string{sec.URL, sec.SigningKey}}
		if sec.SigningKey != "" {
			ts := strconv.FormatInt(s.now().Unix(), 10)
			header.Set(HeaderTimestamp, ts)
			header.Set(HeaderSignature, Sign([]byte(sec.SigningKey), ts, body))
		}
		return r, checkURL(sec.URL)
	case TypeSlack:
		body, err := json.Marshal(slackMessageOf(p))
		if err != nil {
			return request{}, err
		}
		header.Set("Content-Type", "application/json")
		return request{method: http.MethodPost, url: sec.URL, body: body, header: header, secrets: []string{sec.URL}}, checkURL(sec.URL)
	case TypeDeadMansSwitch:
		u := map[string]string{EventStarted: sec.StartURL, EventSucceeded: sec.SuccessURL, EventFailed: sec.FailURL}[p.Event]
		header.Set("Content-Type", "text/plain; charset=utf-8")
		return request{method: http.MethodPost, url: u, body: []byte(p.Summary() + "\n"), header: header, secrets: []string{u}}, checkURL(u)
	}
	return request{}, fmt.Errorf("unknown target type %q", t.Type)
}

func checkURL(u string) error {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return errors.New("the target's URL in its Secret is not an http or https URL")
	}
	return nil
}

// deliver makes the request until the target accepts it, the policy's
// attempts or budget are spent, or the target refuses it; it returns the
// requests made.
func (s *Sender) deliver(ctx context.Context, r request) (int, error) {
	budget := s.Budget
	if budget <= 0 {
		budget = Budget
	}
	backoff := s.Backoff
	if backoff <= 0 {
		backoff = FirstBackoff
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var err error
	for attempt := 1; ; attempt++ {
		var retry bool
		retry, err = s.once(ctx, r)
		if err == nil {
			return attempt, nil
		}
		if !retry || attempt == MaxAttempts {
			return attempt, err
		}
		deadline, _ := ctx.Deadline()
		if time.Until(deadline) < backoff {
			return attempt, fmt.Errorf("%w (gave up after %d attempts: the next would exceed the %s budget)", err, attempt, budget)
		}
		select {
		case <-ctx.Done():
			return attempt, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, MaxBackoff)
	}
}

// once makes one request; retry says whether another might succeed.
func (s *Sender) once(ctx context.Context, r request) (retry bool, err error) {
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, bytes.NewReader(r.body))
	if err != nil {
		return false, errors.New("the target's URL in its Secret is invalid")
	}
	req.Header = r.header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		// A url.Error names the URL, token and all: keep only its cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return true, fmt.Errorf("%s %s: %w", r.method, hostOf(r.url), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
	return retry, fmt.Errorf("%s %s: answered %s", r.method, hostOf(r.url), resp.Status)
}

// hostOf is the host a URL names, which an error may say: a token sits in
// the path or the query, not in the host. Credentials in the URL's
// userinfo are left out.
func hostOf(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return "the target"
	}
	return parsed.Host
}

// redact removes what must not be reported from a message, whatever
// wrapped it.
func redact(msg string, secrets []string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
