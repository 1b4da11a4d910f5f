package notify

import (
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// CloudEvents 1.0 in structured mode: the whole event, attributes and data,
// is the JSON body (https://github.com/cloudevents/spec, json-format.md).
const (
	cloudEventsContentType = "application/cloudevents+json; charset=utf-8"
	cloudEventsSpecVersion = "1.0"
)

// cloudEvent is the structured-mode JSON of one event.
type cloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	// Severity is an extension attribute (lower-case, as CloudEvents
	// requires), so that brokers can route on it without reading data.
	Severity string `json:"severity"`
	Data     Event  `json:"data"`
}

// CloudEventType is the CloudEvents type of a history entry type: the API
// group reversed, then rollout and the type in lower case, for example
// dev.fulcrum.rollout.rolledback.
func CloudEventType(historyType string) string {
	parts := strings.Split(v1alpha1.GroupVersion.Group, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".") + ".rollout." + strings.ToLower(historyType)
}

// CloudEventSource is the rollout's API path, which identifies it as the
// producer: /apis/fulcrum.dev/v1alpha1/namespaces/NS/modelrollouts/NAME.
func CloudEventSource(namespace, name string) string {
	gv := v1alpha1.GroupVersion
	return "/apis/" + gv.Group + "/" + gv.Version + "/namespaces/" + namespace + "/" + v1alpha1.ResourceModelRollouts + "/" + name
}

// cloudEventBody is the webhook's request body. Its subject is the
// version the event is about (the candidate, else stable), so that a
// receiver can follow one model version; its id is the entry's, the same
// on every delivery of the entry, as CloudEvents asks of duplicates.
func cloudEventBody(ev *Event) ([]byte, error) {
	subject := ev.Candidate
	if subject == "" {
		subject = ev.Stable
	}
	return marshal(cloudEvent{
		SpecVersion:     cloudEventsSpecVersion,
		ID:              ev.ID,
		Source:          CloudEventSource(ev.Namespace, ev.Rollout),
		Type:            CloudEventType(ev.Type),
		Subject:         subject,
		Time:            ev.Time,
		DataContentType: "application/json",
		Severity:        strings.ToLower(string(ev.Severity)),
		Data:            *ev,
	})
}
