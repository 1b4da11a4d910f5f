package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/fulcrum-ml/fulcrum/e2e/localenv"
	"github.com/fulcrum-ml/fulcrum/e2e/rig"
)

// Options of a whole benchmark (the benchpeers command's flags).
type Options struct {
	// Systems by name: "flagger", "argo", "fulcrum" (all when empty).
	Systems []string
	// Profiles by name (Profiles' names; all when empty).
	Profiles []string
	Repeat   int
	Limit    time.Duration
	Warmup   time.Duration
	Seed     uint64
	// FulcrumSpecYAML is merged over Fulcrum's ModelRollout spec.
	FulcrumSpecYAML []byte
	// ResultsFile, when set, gets every Result as a JSON line as it comes.
	ResultsFile string
	// KeepDir keeps the environment's folder (every controller's log).
	KeepDir bool
	// Command is the command line, printed above the table.
	Command string
}

// SystemNames are the names Options.Systems accepts, in table order.
var SystemNames = []string{"flagger", "argo", "fulcrum"}

// Bench builds the peers, starts one local environment with the rig and
// the peers' CRDs, runs every selected system on every selected profile
// and writes the table to out (progress goes to log).
func Bench(ctx context.Context, opts Options, out, log io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(log, format+"\n", args...) }
	t0 := time.Now()
	if len(opts.Systems) == 0 {
		opts.Systems = SystemNames
	}
	profiles, err := selectProfiles(opts.Profiles)
	if err != nil {
		return err
	}
	var systems []System
	var crds []string
	for _, name := range opts.Systems {
		switch name {
		case "flagger", "argo":
			tool := FlaggerTool
			if name == "argo" {
				tool = ArgoTool
			}
			start := time.Now()
			p, err := BuildPeer(ctx, tool, logf)
			if err != nil {
				return err
			}
			logf("peers: %s %s ready in %s (%s)", tool.Name, p.Version, time.Since(start).Round(time.Second), p.Bin)
			crds = append(crds, p.CRDs...)
			if name == "flagger" {
				systems = append(systems, &Flagger{Peer: p})
			} else {
				systems = append(systems, &Argo{Peer: p})
			}
		case "fulcrum":
			systems = append(systems, &Fulcrum{SpecYAML: opts.FulcrumSpecYAML})
		default:
			return fmt.Errorf("unknown system %q: use %s", name, strings.Join(SystemNames, ", "))
		}
	}

	envOpts := rig.LocalenvOptions()
	envOpts.Logf, envOpts.KeepDir = logf, opts.KeepDir
	kube, err := localenv.Start(ctx, envOpts)
	if err != nil {
		return err
	}
	defer func() { _ = kube.Stop() }()
	env, err := rig.Setup(ctx, kube, kube.Dir)
	if err != nil {
		return fmt.Errorf("rig: %w", err)
	}
	if len(crds) > 0 {
		if err := kube.InstallCRDs(ctx, crds...); err != nil {
			return fmt.Errorf("peers' CRDs: %w", err)
		}
	}
	logf("peers: environment ready in %s (logs in %s)", time.Since(t0).Round(time.Second), kube.Dir)

	var results io.Writer = io.Discard
	if opts.ResultsFile != "" {
		f, err := os.OpenFile(opts.ResultsFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		results = f
	}
	started, load0 := time.Now(), loadAverage()
	all, runErr := Run(ctx, Config{
		Env: env, Systems: systems, Profiles: profiles,
		Repeat: opts.Repeat, Limit: opts.Limit, Warmup: opts.Warmup, Seed: opts.Seed,
		Logf: logf,
		OnResult: func(r Result) {
			b, _ := json.Marshal(r)
			fmt.Fprintf(results, "%s\n", b)
		},
	})
	fmt.Fprintf(out, "`%s`, %s, %s\n\n", opts.Command, started.UTC().Format("2006-01-02 15:04 MST"), machine(load0))
	if err := WriteTable(out, all); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nRuns took %s in all (load average at the end: %s).\n", time.Since(started).Round(time.Second), loadAverage())
	return runErr
}

func selectProfiles(names []string) ([]Profile, error) {
	if len(names) == 0 {
		return Profiles, nil
	}
	var out []Profile
	for _, n := range names {
		found := false
		for _, p := range Profiles {
			if p.Name == n {
				out, found = append(out, p), true
			}
		}
		if !found {
			var all []string
			for _, p := range Profiles {
				all = append(all, p.Name)
			}
			return nil, fmt.Errorf("unknown profile %q: use %s", n, strings.Join(all, ", "))
		}
	}
	return out, nil
}

// machine describes where the benchmark ran.
func machine(load string) string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d cores%s, %s, load average at the start %s", runtime.NumCPU(), mem, runtime.Version(), load)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
