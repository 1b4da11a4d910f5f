package notify

import (
	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// A Microsoft Teams message with one Adaptive Card, the shape both a
// Workflows webhook ("post to a channel when a webhook request is
// received") and a legacy incoming webhook accept.
type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"`
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string            `json:"$schema"`
	Type    string            `json:"type"`
	Version string            `json:"version"`
	Body    []cardElement     `json:"body"`
	Actions []cardAction      `json:"actions,omitempty"`
	MSTeams map[string]string `json:"msteams"`
}

// cardElement is a TextBlock or a FactSet.
type cardElement struct {
	Type     string     `json:"type"`
	Text     string     `json:"text,omitempty"`
	Size     string     `json:"size,omitempty"`
	Weight   string     `json:"weight,omitempty"`
	Color    string     `json:"color,omitempty"`
	Wrap     bool       `json:"wrap,omitempty"`
	IsSubtle bool       `json:"isSubtle,omitempty"`
	Facts    []cardFact `json:"facts,omitempty"`
}

type cardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type cardAction struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// teamsColors are the Adaptive Card colours of the headline by severity.
var teamsColors = map[v1alpha1.Severity]string{
	v1alpha1.SeverityCritical: "Attention",
	v1alpha1.SeverityWarning:  "Warning",
	v1alpha1.SeverityInfo:     "Good",
}

func teamsBody(ev *Event) ([]byte, error) {
	body := []cardElement{{
		Type: "TextBlock", Text: Headline(ev), Size: "Medium", Weight: "Bolder",
		Color: teamsColors[severityOrInfo(ev.Severity)], Wrap: true,
	}}
	if ev.Reason != "" {
		body = append(body, cardElement{Type: "TextBlock", Text: ev.Reason, Wrap: true})
	}
	body = append(body, cardElement{Type: "FactSet", Facts: cardFacts(facts(ev))})
	if v := ev.Verdict; v != nil {
		body = append(body,
			cardElement{Type: "TextBlock", Text: verdictTitle(v), Weight: "Bolder", Wrap: true},
			cardElement{Type: "FactSet", Facts: cardFacts(verdictFacts(v))})
	}
	body = append(body, cardElement{
		Type: "TextBlock", Text: string(ev.Severity) + " · " + ev.Type + " · " + ev.Time.Format("2006-01-02 15:04:05 MST"),
		Size: "Small", IsSubtle: true, Wrap: true,
	})
	card := adaptiveCard{
		Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4",
		Body: body, MSTeams: map[string]string{"width": "Full"},
	}
	if ev.DashboardURL != "" {
		card.Actions = []cardAction{{Type: "Action.OpenUrl", Title: "Open in Fulcrum", URL: ev.DashboardURL}}
	}
	return marshal(teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive", Content: card,
	}}})
}

func cardFacts(fs []fact) []cardFact {
	out := make([]cardFact, len(fs))
	for i, f := range fs {
		out[i] = cardFact{Title: f.label, Value: f.value}
	}
	return out
}
