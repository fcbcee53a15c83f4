package notify

import "fmt"

// slackMessage is what a Slack-compatible incoming webhook gets: the
// summary as text (what notifications and clients without blocks show),
// and as blocks a section with it and a context line with the details.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string       `json:"type"`
	Text     *slackText   `json:"text,omitempty"`
	Elements []*slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func slackMessageOf(p Payload) slackMessage {
	icon := map[string]string{EventStarted: ":arrow_forward:", EventSucceeded: ":white_check_mark:", EventFailed: ":x:"}[p.Event]
	text := p.Summary()
	details := fmt.Sprintf("Workflow `%s`", p.Workflow)
	if p.Checksum != "" {
		details += fmt.Sprintf(" · checksum `%s`", p.Checksum)
	}
	return slackMessage{Text: text, Blocks: []slackBlock{
		{Type: "section", Text: &slackText{Type: "mrkdwn", Text: icon + " " + text}},
		{Type: "context", Elements: []*slackText{{Type: "mrkdwn", Text: details}}},
	}}
}
