package peers

import (
	"math"
	"strings"
	"testing"
)

func TestMedianRange(t *testing.T) {
	for name, tc := range map[string]struct {
		xs       []float64
		decimals int
		want     string
	}{
		"none":           {nil, 0, "–"},
		"one run":        {[]float64{118}, 0, "118"},
		"odd count":      {[]float64{216, 183, 200}, 0, "200 (183–216)"},
		"even count":     {[]float64{50, 51}, 1, "50.5 (50.0–51.0)"},
		"all equal":      {[]float64{7, 7}, 0, "7"},
		"order is moot":  {[]float64{3, 1, 2, 10}, 1, "2.5 (1.0–10.0)"},
		"decimals round": {[]float64{82.44}, 0, "82"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := MedianRange(tc.xs, tc.decimals); got != tc.want {
				t.Errorf("MedianRange(%v) = %q, want %q", tc.xs, got, tc.want)
			}
		})
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestWriteTable(t *testing.T) {
	results := []Result{
		{System: "Flagger", Profile: "bad", Outcome: RolledBack, Phase: "Failed", Seconds: 61, CandidateRequests: 5952, CandidateErrors: 118},
		{System: "Fulcrum", Profile: "bad", Outcome: RolledBack, Phase: "RolledBack", Seconds: 30, CandidateRequests: 1900, CandidateErrors: 40},
		{System: "Flagger", Profile: "healthy", Outcome: Promoted, Phase: "Succeeded", Seconds: 82, CandidateRequests: 20000, CandidateErrors: 100},
		{System: "Flagger", Profile: "bad", Outcome: RolledBack, Phase: "Failed", Seconds: 63, CandidateRequests: 6100, CandidateErrors: 122},
		{System: "Fulcrum", Profile: "bad", Err: "setup: boom\nmore"},
		{System: "Fulcrum", Profile: "bad", Outcome: Undecided, Phase: "Progressing", Seconds: 600, CandidateRequests: 100, CandidateErrors: 2},
	}
	var b strings.Builder
	if err := WriteTable(&b, results); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"| bad | Flagger | 2 | rolled back ×2 | 120 (118–122) | 6026 (5952–6100) | 62 (61–63) | Failed ×2 |",
		"| bad | Fulcrum | 2 (+1 failed) | rolled back ×1, undecided ×1 | 21 (2–40) | 1000 (100–1900) | 315 (30–600) | Progressing ×1, RolledBack ×1 |",
		"| healthy | Flagger | 1 | promoted ×1 | 100 | 20000 | 82 | Succeeded ×1 |",
		"- Fulcrum, bad: setup: boom …",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	// Rows of one profile stay together although results interleave.
	if strings.Index(got, "| healthy |") < strings.Index(got, "| bad | Fulcrum |") {
		t.Errorf("profiles interleaved:\n%s", got)
	}
}
