package peers

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
)

// Summary is the runs of one system on one profile.
type Summary struct {
	System, Profile string
	// Runs that completed; Failed runs (Result.Err) are left out of the
	// figures and listed by WriteTable.
	Runs, Failed int
	// Outcomes and Phases count the runs by outcome and final phase.
	Outcomes, Phases map[string]int
	// Errors, Requests and Seconds are the candidate's errors, its
	// requests and the seconds to the outcome, one value per run.
	Errors, Requests, Seconds []float64
}

// Summarize groups results by profile and system, in the order they first
// appear.
func Summarize(results []Result) []Summary {
	var out []Summary
	index := map[[2]string]int{}
	for _, r := range results {
		k := [2]string{r.Profile, r.System}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, Summary{System: r.System, Profile: r.Profile, Outcomes: map[string]int{}, Phases: map[string]int{}})
		}
		s := &out[i]
		if r.Err != "" {
			s.Failed++
			continue
		}
		s.Runs++
		s.Outcomes[r.Outcome]++
		s.Phases[r.Phase]++
		s.Errors = append(s.Errors, float64(r.CandidateErrors))
		s.Requests = append(s.Requests, float64(r.CandidateRequests))
		s.Seconds = append(s.Seconds, r.Seconds)
	}
	// Rows of a profile together, in first-seen order.
	order := map[string]int{}
	for _, s := range out {
		if _, ok := order[s.Profile]; !ok {
			order[s.Profile] = len(order)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return order[out[i].Profile] < order[out[j].Profile] })
	return out
}

// Median of xs (the mean of the middle two for an even count); NaN when
// empty.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MedianRange renders "median (min–max)", or the single value of one run,
// with the given decimals; "–" without runs.
func MedianRange(xs []float64, decimals int) string {
	if len(xs) == 0 {
		return "–"
	}
	f := func(x float64) string { return fmt.Sprintf("%.*f", decimals, x) }
	lo, hi := slices.Min(xs), slices.Max(xs)
	if len(xs) == 1 || lo == hi {
		return f(Median(xs))
	}
	return fmt.Sprintf("%s (%s–%s)", f(Median(xs)), f(lo), f(hi))
}

// counts renders a count map as "a ×2, b ×1", most frequent first.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts[i] = fmt.Sprintf("%s ×%d", name, m[k])
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

// WriteTable prints the summaries as one Markdown table: per profile and
// system, the outcomes, the candidate's errors and requests before the
// outcome, the seconds to it and the final phases, each as the median and
// range over the runs. Failed runs are listed below it.
func WriteTable(w io.Writer, results []Result) error {
	var b strings.Builder
	b.WriteString("| profile | system | runs | outcome | errors served by the candidate | candidate requests | seconds to the outcome | final phase |\n")
	b.WriteString("|---|---|---:|---|---:|---:|---:|---|\n")
	for _, s := range Summarize(results) {
		runs := fmt.Sprint(s.Runs)
		if s.Failed > 0 {
			runs += fmt.Sprintf(" (+%d failed)", s.Failed)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Profile, s.System, runs, counts(s.Outcomes),
			MedianRange(s.Errors, 0), MedianRange(s.Requests, 0), MedianRange(s.Seconds, 0), counts(s.Phases))
	}
	var failed []string
	for _, r := range results {
		if r.Err != "" {
			failed = append(failed, fmt.Sprintf("- %s, %s: %s", r.System, r.Profile, firstLine(r.Err)))
		}
	}
	if len(failed) > 0 {
		b.WriteString("\nFailed runs (not in the figures):\n" + strings.Join(failed, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
