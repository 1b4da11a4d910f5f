package peers

import (
	"strings"
	"testing"
)

func TestSuccessRateQuerySelectsTheCanaryWorkload(t *testing.T) {
	q := successRateQuery("ns1")
	for _, want := range []string{
		`reporter="destination"`,
		`destination_workload_namespace="ns1"`,
		`destination_workload="fraud-{{args.canary-hash}}"`,
		`response_code!~"5.*"`,
		`[1m]`,
	} {
		if !strings.Contains(q, want) {
			t.Errorf("query lacks %s: %s", want, q)
		}
	}
}

func TestSelectProfiles(t *testing.T) {
	all, err := selectProfiles(nil)
	if err != nil || len(all) != 4 {
		t.Fatalf("all profiles: %v, %v", all, err)
	}
	got, err := selectProfiles([]string{"bad-1rps"})
	if err != nil || len(got) != 1 || got[0].Rate != 1 || !got[0].Bad() {
		t.Fatalf("bad-1rps: %+v, %v", got, err)
	}
	if _, err := selectProfiles([]string{"nope"}); err == nil || !strings.Contains(err.Error(), "healthy-1000rps") {
		t.Errorf("unknown profile: %v", err)
	}
	for _, p := range Profiles {
		if p.Bad() != strings.HasPrefix(p.Name, "bad") {
			t.Errorf("%s: Bad() = %t", p.Name, p.Bad())
		}
	}
}
