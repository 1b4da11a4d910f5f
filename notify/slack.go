package notify

import (
	"strings"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// A Slack incoming webhook message: the text is the notification's
// fallback, and one attachment carries the colour of the severity around
// Block Kit blocks (header, reason, facts, verdict, a button to the
// dashboard, and a context line).
type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color  string       `json:"color"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string         `json:"type"`
	Text     *slackText     `json:"text,omitempty"`
	Fields   []slackText    `json:"fields,omitempty"`
	Elements []slackElement `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

// slackElement is a button (text a plain_text object, and url) or a
// context block's mrkdwn element (text a string).
type slackElement struct {
	Type string `json:"type"`
	Text any    `json:"text"`
	URL  string `json:"url,omitempty"`
}

// Block Kit limits (api.slack.com/reference/block-kit/blocks).
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
	slackFieldsMax  = 10
)

// slackColors are the attachment colours by severity (Slack's own red,
// yellow and green).
var slackColors = map[v1alpha1.Severity]string{
	v1alpha1.SeverityCritical: "#E01E5A",
	v1alpha1.SeverityWarning:  "#ECB22E",
	v1alpha1.SeverityInfo:     "#2EB67D",
}

func slackBody(ev *Event) ([]byte, error) {
	head := Headline(ev)
	blocks := []slackBlock{{Type: "header", Text: &slackText{"plain_text", v1alpha1.CutText(head, slackHeaderMax)}}}
	if ev.Reason != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwn(v1alpha1.CutText(slackEscape(ev.Reason), slackSectionMax))})
	}
	blocks = append(blocks, slackBlock{Type: "section", Fields: slackFields(facts(ev))})
	if v := ev.Verdict; v != nil {
		b := slackBlock{Type: "section", Text: mrkdwn("*" + verdictTitle(v) + "*")}
		b.Fields = slackFields(verdictFacts(v))
		blocks = append(blocks, b)
	}
	if ev.DashboardURL != "" {
		blocks = append(blocks, slackBlock{Type: "actions", Elements: []slackElement{
			{Type: "button", Text: &slackText{"plain_text", "Open in Fulcrum"}, URL: ev.DashboardURL},
		}})
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackElement{
		{Type: "mrkdwn", Text: string(ev.Severity) + " · " + ev.Type + " · " + ev.Time.Format("2006-01-02 15:04:05 MST")},
	}})
	return marshal(slackMessage{
		Text:        head,
		Attachments: []slackAttachment{{Color: slackColors[severityOrInfo(ev.Severity)], Blocks: blocks}},
	})
}

func slackFields(fs []fact) []slackText {
	if len(fs) > slackFieldsMax {
		fs = fs[:slackFieldsMax]
	}
	out := make([]slackText, len(fs))
	for i, f := range fs {
		out[i] = *mrkdwn(v1alpha1.CutText("*"+slackEscape(f.label)+"*\n"+slackEscape(f.value), slackFieldMax))
	}
	return out
}

func mrkdwn(s string) *slackText { return &slackText{"mrkdwn", s} }

// slackEscape escapes the three characters Slack's mrkdwn gives meaning
// to, so that a reason cannot make a link or mention.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func severityOrInfo(s v1alpha1.Severity) v1alpha1.Severity {
	if s == "" {
		return v1alpha1.SeverityInfo
	}
	return s
}
