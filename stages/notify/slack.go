package notify

import "fmt"

// slackMessage is the message a Slack-compatible incoming webhook gets: the
// summary as text (what notifications and clients without blocks show),
// and as blocks a section with it and a context line with the details.
func slackMessage(p Payload) map[string]any {
	icon := map[string]string{EventStarted: ":arrow_forward:", EventSucceeded: ":white_check_mark:", EventFailed: ":x:"}[p.Event]
	text := p.Summary()
	details := fmt.Sprintf("Workflow `%s`", p.Workflow)
	if p.Checksum != "" {
		details += fmt.Sprintf(" · checksum `%s`", p.Checksum)
	}
	const textField = "text"
	mrkdwn := func(s string) map[string]any { return map[string]any{"type": "mrkdwn", textField: s} }
	return map[string]any{
		textField: text,
		"blocks": []any{
			map[string]any{"type": "section", textField: mrkdwn(icon + " " + text)},
			map[string]any{"type": "context", "elements": []any{mrkdwn(details)}},
		},
	}
}
