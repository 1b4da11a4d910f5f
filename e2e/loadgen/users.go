package loadgen

import (
	"context"
	"fmt"
	"math"
	"net/http/cookiejar"
	"slices"
	"sort"
	"strconv"
	"sync"
)

// MaxUsers bounds Config.Users: the generator keeps a little state per user
// of the pool (the versions that answered, a cookie jar in Cookies mode).
const MaxUsers = 1_000_000

// userState is one simulated user. Its fields other than versions are set
// once by init; versions is guarded by Generator.mu.
type userState struct {
	once  sync.Once
	turn  chan struct{}  // Cookies mode: the user's requests go one at a time
	jar   *cookiejar.Jar // Cookies mode
	group string         // the GroupHeader value, "" for none

	versions []string // distinct versions that answered, in order of first answer
}

func userID(i int) string { return "user-" + strconv.Itoa(i) }

// user returns user i, set up on first use so that a large pool costs
// nothing until its users send.
func (g *Generator) user(i int) *userState {
	u := &g.users[i]
	u.once.Do(func() {
		if g.cfg.Cookies {
			u.turn = make(chan struct{}, 1)
			// A nil PublicSuffixList is fine for loopback targets: cookies
			// are host-only unless they name a Domain.
			u.jar, _ = cookiejar.New(nil)
		}
		if g.cfg.Group != nil {
			u.group = g.cfg.Group(i)
		}
	})
	return u
}

// take waits for the user's previous request to be answered, as a browser
// that got its cookie from the first answer would; false if ctx ended.
func (u *userState) take(ctx context.Context) bool {
	if u.turn == nil {
		return true
	}
	select {
	case u.turn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (u *userState) give() {
	if u.turn != nil {
		<-u.turn
	}
}

// answeredBy notes that version answered user u and updates the per-user
// counts of r. Callers hold Generator.mu.
func (r *Report) answeredBy(u *userState, version string) {
	if version == NoVersion || slices.Contains(u.versions, version) {
		return
	}
	u.versions = append(u.versions, version)
	r.UsersByVersion[version]++
	if len(u.versions) == 2 {
		r.Crossed++
	}
}

// UserVersions maps each user answered so far by at least one version to
// the versions that answered it, sorted. With sticky routing every list has
// one element; Report.Crossed counts the others.
func (g *Generator) UserVersions() map[string][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string][]string{}
	for i := range g.users {
		if vs := g.users[i].versions; len(vs) > 0 {
			out[userID(i)] = slices.Sorted(slices.Values(vs))
		}
	}
	return out
}

// Shares returns a Config.Group that gives each user one of the groups in
// proportion to its share (shares are weights; they need not sum to 1).
// The group is a hash of the user's index, so it is the same in every run
// and needs no seed.
func Shares(shares map[string]float64) (func(user int) string, error) {
	names := make([]string, 0, len(shares))
	total := 0.0
	for name, s := range shares {
		if name == "" || !(s >= 0) || math.IsInf(s, 0) {
			return nil, fmt.Errorf("loadgen shares: group %q has share %v; want a named group with a finite share >= 0, e.g. {\"v1\": 0.5, \"v2\": 0.5}", name, s)
		}
		names = append(names, name)
		total += s
	}
	if !(total > 0) {
		return nil, fmt.Errorf("loadgen shares %v: want at least one share above 0", shares)
	}
	sort.Strings(names)
	bounds := make([]float64, len(names))
	acc := 0.0
	for i, n := range names {
		acc += shares[n] / total
		bounds[i] = acc
	}
	return func(user int) string {
		x := float64(splitmix64(uint64(user))>>11) / (1 << 53) // uniform in [0, 1)
		for i, b := range bounds {
			if x < b {
				return names[i]
			}
		}
		return names[len(names)-1]
	}, nil
}

// splitmix64 scrambles consecutive user indexes into independent-looking
// 64-bit values.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
