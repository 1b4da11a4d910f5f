package sim

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// Scenarios are the issue's: healthy, bad and subtle at 1 and 1,000 rps.
func Scenarios() []Scenario {
	var out []Scenario
	for _, rps := range []float64{1000, 1} {
		out = append(out,
			Scenario{Name: "healthy", RPS: rps, StableP: 0.005, CandidateP: 0.005},
			Scenario{Name: "bad", RPS: rps, StableP: 0.005, CandidateP: 0.02},
			Scenario{Name: "subtle", RPS: rps, StableP: 0.005, CandidateP: 0.008},
		)
	}
	return out
}

// Summary aggregates the runs of one policy on one scenario.
type Summary struct {
	Scenario                                Scenario
	Policy                                  string
	Runs                                    int
	Promoted, RolledBack, Paused, Undecided int
	MeanRequests, MeanErrors                float64
	MeanSeconds                             float64 // over runs with an outcome (promoted, rolled back, paused)
	MedianSamplesNeeded                     int64   // over paused and undecided runs
	MedianETASeconds                        float64 // over paused and undecided runs
}

// Evaluate runs seeds 1..seeds of every policy on sc, workers at a time.
// Seed i drives the same random stream for every policy.
func Evaluate(sc Scenario, policies []Policy, seeds int, horizon float64, workers int) []Summary {
	out := make([]Summary, len(policies))
	for pi, p := range policies {
		runs := make([]Run, seeds)
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < max(workers, 1); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					runs[i] = p.Run(sc, uint64(i+1), horizon)
				}
			}()
		}
		for i := 0; i < seeds; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		s := Summary{Scenario: sc, Policy: p.Name(), Runs: seeds}
		var decided int
		var need []int64
		var etas []float64
		for _, r := range runs {
			s.MeanRequests += float64(r.CandidateRequests)
			s.MeanErrors += float64(r.CandidateErrors)
			switch r.Outcome {
			case Promoted:
				s.Promoted++
			case RolledBack:
				s.RolledBack++
			case Paused:
				s.Paused++
				need = append(need, r.SamplesNeeded)
				etas = append(etas, r.ETASeconds)
			default:
				s.Undecided++
				need = append(need, r.SamplesNeeded)
				etas = append(etas, r.ETASeconds)
			}
			if r.Outcome != Undecided {
				decided++
				s.MeanSeconds += r.Seconds
			}
		}
		s.MeanRequests /= float64(seeds)
		s.MeanErrors /= float64(seeds)
		if decided > 0 {
			s.MeanSeconds /= float64(decided)
		}
		if len(need) > 0 {
			sort.Slice(need, func(i, j int) bool { return need[i] < need[j] })
			s.MedianSamplesNeeded = need[len(need)/2]
			sort.Float64s(etas)
			s.MedianETASeconds = etas[len(etas)/2]
		}
		out[pi] = s
	}
	return out
}

// WriteTable prints summaries as a Markdown table.
func WriteTable(w io.Writer, rows []Summary) {
	fmt.Fprintln(w, "| scenario | rps | policy | candidate requests before the outcome | candidate errors served | time to the outcome | promoted / rolled back / paused / undecided | false rollbacks | missed regressions | samples still needed, and ETA (median, paused or undecided) |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---|---:|---:|---:|")
	for _, s := range rows {
		falseRB, missed := "–", "–"
		if s.Scenario.CandidateP <= s.Scenario.StableP {
			falseRB = fmt.Sprintf("%d / %d", s.RolledBack, s.Runs)
		} else {
			missed = fmt.Sprintf("%d / %d", s.Promoted, s.Runs)
		}
		t := "–"
		if s.Promoted+s.RolledBack+s.Paused > 0 {
			t = fmt.Sprintf("%.0f s", s.MeanSeconds)
		}
		need := "–"
		if s.Undecided+s.Paused > 0 {
			need = fmt.Sprintf("%d", s.MedianSamplesNeeded)
			if s.MedianETASeconds > 0 {
				need += fmt.Sprintf(" (%s)", time.Duration(s.MedianETASeconds*float64(time.Second)).Round(time.Minute))
			}
		}
		fmt.Fprintf(w, "| %s %.1f%%→%.1f%% | %g | %s | %.0f | %.1f | %s | %d / %d / %d / %d | %s | %s | %s |\n",
			s.Scenario.Name, 100*s.Scenario.StableP, 100*s.Scenario.CandidateP, s.Scenario.RPS, s.Policy,
			s.MeanRequests, s.MeanErrors, t, s.Promoted, s.RolledBack, s.Paused, s.Undecided, falseRB, missed, need)
	}
}
