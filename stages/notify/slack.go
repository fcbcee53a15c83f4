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
	return map[string]any{
		"text": text,
		"blocks": []any{
			map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": icon + " " + text}},
			map[string]any{"type": "context", "elements": []any{map[string]any{"type": "mrkdwn", "text": details}}},
		},
	}
}
