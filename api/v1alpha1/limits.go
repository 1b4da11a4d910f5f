package v1alpha1

import "unicode/utf8"

// Length bounds of free-text status fields, enforced by the CRD. Writers cut
// their text to them (CutText) so that a status update is never refused for
// a long message: a refused status write would leave a decided rollback
// unrecorded, and the next reconcile would decide from stale status.
const (
	MaxStatusMessage  = 1024
	MaxHistoryReason  = 1024
	MaxMetricMessage  = 512
	MaxThreshold      = 256
	MaxActorLength    = 253
	MaxConditionText  = 32768
	MaxHistoryEntries = 100
	MaxRecentRounds   = 10
)

// CutText returns s cut to at most max bytes on a rune boundary, ending in
// "…" when anything was cut.
func CutText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	if max < len(ellipsis) {
		return ""
	}
	n := max - len(ellipsis)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + ellipsis
}
