package builder

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/disk"

	"github.com/berth/berth/filters"
)

// GCConfig is the build cache's garbage collection policy: daemon.json's
// "builder": {"gc": {...}}, with dockerd's keys (and its deprecated
// keepStorage/defaultKeepStorage, read as the reserved space). BuildKit
// applies the policy after builds, rule by rule, until one is satisfied.
type GCConfig struct {
	// Enabled turns the automatic collection on (default) or off.
	Enabled *bool
	// Policy replaces the default rules when given.
	Policy []GCRule
	// The default rules' limits ("10GB", "512MB"): reserved space is
	// kept in any case, the cache is cut down to max used space, and to
	// leave min free space on the disk. None given: shares of the disk
	// holding the cache (10%, 80%, 20%), as dockerd.
	DefaultReservedSpace string
	DefaultMaxUsedSpace  string
	DefaultMinFreeSpace  string
}

// GCRule is one rule of a GC policy: which records it removes (Filter:
// prune filters such as "unused-for=48h", "type=exec.cachemount"; All:
// also records still referenced internally) and down to which limits.
type GCRule struct {
	All           bool
	Filter        filters.Args
	ReservedSpace string
	MaxUsedSpace  string
	MinFreeSpace  string
}

// UnmarshalJSON reads a rule as dockerd does: Filter a list of
// "key=value" (or the old object form), keepStorage the old name of
// reservedSpace.
func (r *GCRule) UnmarshalJSON(data []byte) error {
	var raw struct {
		All           bool
		Filter        json.RawMessage
		ReservedSpace string
		MaxUsedSpace  string
		MinFreeSpace  string
		KeepStorage   string
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*r = GCRule{All: raw.All, ReservedSpace: raw.ReservedSpace, MaxUsedSpace: raw.MaxUsedSpace, MinFreeSpace: raw.MinFreeSpace}
	if r.ReservedSpace == "" {
		r.ReservedSpace = raw.KeepStorage
	}
	if len(raw.Filter) == 0 || string(raw.Filter) == "null" {
		return nil
	}
	var list []string
	if err := json.Unmarshal(raw.Filter, &list); err != nil {
		f, ferr := filters.Parse(string(raw.Filter))
		if ferr != nil {
			return ferr
		}
		r.Filter = f
		return nil
	}
	r.Filter = filters.Args{}
	for _, s := range list {
		k, v, _ := strings.Cut(s, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		r.Filter[k] = append(r.Filter[k], strings.TrimSpace(v))
	}
	return nil
}

// UnmarshalJSON reads the policy as dockerd does: defaultKeepStorage is
// the old name of defaultReservedSpace.
func (c *GCConfig) UnmarshalJSON(data []byte) error {
	var raw struct {
		Enabled              *bool
		Policy               []GCRule
		DefaultReservedSpace string
		DefaultMaxUsedSpace  string
		DefaultMinFreeSpace  string
		DefaultKeepStorage   string
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*c = GCConfig{Enabled: raw.Enabled, Policy: raw.Policy, DefaultReservedSpace: raw.DefaultReservedSpace,
		DefaultMaxUsedSpace: raw.DefaultMaxUsedSpace, DefaultMinFreeSpace: raw.DefaultMinFreeSpace}
	if c.DefaultReservedSpace == "" {
		c.DefaultReservedSpace = raw.DefaultKeepStorage
	}
	return nil
}

// Rules returns BuildKit's prune rules for the policy; none when it is
// disabled. root is where the cache lives (the default rules' limits are
// shares of its disk). An unreadable size or filter is an
// InvalidArgument error naming the key.
func (c GCConfig) Rules(root string) ([]client.PruneInfo, error) {
	if c.Enabled != nil && !*c.Enabled {
		return nil, nil
	}
	if c.Policy == nil {
		reserved, maxUsed, minFree, err := parseSpaces("default", c.DefaultReservedSpace, c.DefaultMaxUsedSpace, c.DefaultMinFreeSpace)
		if err != nil {
			return nil, err
		}
		return defaultGCRules(root, reserved, maxUsed, minFree), nil
	}
	rules := make([]client.PruneInfo, 0, len(c.Policy))
	for i, p := range c.Policy {
		reserved, maxUsed, minFree, err := parseSpaces("", p.ReservedSpace, p.MaxUsedSpace, p.MinFreeSpace)
		if err != nil {
			return nil, err
		}
		opts := PruneOptions{All: p.All, ReservedSpace: reserved, MaxUsedSpace: maxUsed, MinFreeSpace: minFree}
		if err := opts.SetFilters(p.Filter, time.Now()); err != nil {
			return nil, fmt.Errorf("builder GC policy rule %d: %w", i, err)
		}
		rules = append(rules, client.PruneInfo{All: opts.All, Filter: opts.Filters, KeepDuration: opts.KeepDuration,
			ReservedSpace: opts.ReservedSpace, MaxUsedSpace: opts.MaxUsedSpace, MinFreeSpace: opts.MinFreeSpace})
	}
	return rules, nil
}

// parseSpaces reads the three limits of a rule ("10GB"; "" is none).
func parseSpaces(prefix string, reserved, maxUsed, minFree string) (r, m, f int64, err error) {
	out := [3]int64{}
	for i, kv := range [3][2]string{{"reservedSpace", reserved}, {"maxUsedSpace", maxUsed}, {"minFreeSpace", minFree}} {
		if kv[1] == "" {
			continue
		}
		n, err := units.RAMInBytes(kv[1])
		if err != nil {
			key := kv[0]
			if prefix != "" {
				key = prefix + strings.ToUpper(key[:1]) + key[1:]
			}
			return 0, 0, 0, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse %s: %v", key, err))
		}
		out[i] = n
	}
	return out[0], out[1], out[2], nil
}

// defaultGCRules are dockerd's default rules: reproducible data (local
// sources, cache mounts, git checkouts) unused for two days once it
// passes a small share of the limit, anything unused for 60 days, then
// unshared and at last all records down to the limits. Limits not given
// are shares of the disk at root.
func defaultGCRules(root string, reserved, maxUsed, minFree int64) []client.PruneInfo {
	if reserved == 0 && maxUsed == 0 && minFree == 0 {
		if st, err := disk.GetDiskStat(root); err == nil {
			share := func(pct int64) int64 { return (st.Total*pct/100/(1<<30) + 1) * 1e9 }
			reserved, maxUsed, minFree = share(10), share(80), share(20)
		} else {
			reserved = 2e9
		}
	}
	// dockerd's "mathematically pleasing" share (about 13.8%) of the
	// reserved space, at least 512 MB, for the reproducible data.
	temp := max(int64(math.Round(float64(reserved)/100*math.E*math.Pi*math.Phi)), 512e6)
	return []client.PruneInfo{
		{Filter: []string{"type==source.local", "type==exec.cachemount", "type==source.git.checkout"}, KeepDuration: 48 * time.Hour, MaxUsedSpace: temp},
		{KeepDuration: 60 * 24 * time.Hour, ReservedSpace: reserved, MaxUsedSpace: maxUsed, MinFreeSpace: minFree},
		{ReservedSpace: reserved, MaxUsedSpace: maxUsed, MinFreeSpace: minFree},
		{All: true, ReservedSpace: reserved, MaxUsedSpace: maxUsed, MinFreeSpace: minFree},
	}
}

// cacheFilterFields are the record fields a build prune filter may test
// (as dockerd: "id" as a prefix, the others equal).
var cacheFilterFields = []string{"id", "parent", "type", "description", "inuse", "shared", "private"}

// SetFilters sets o's KeepDuration and Filters from a prune's filters
// (POST /build/prune, a GC rule), as dockerd reads them: until (or its
// old name unused-for) keeps records used since then; record fields
// become BuildKit filter expressions. Bad filters are InvalidArgument.
func (o *PruneOptions) SetFilters(f filters.Args, now time.Time) error {
	if err := f.Validate(append([]string{"until", "unused-for", "label", "label!"}, cacheFilterFields...)...); err != nil {
		return err
	}
	if f.Has("until") && f.Has("unused-for") {
		return cerrdefs.ErrInvalidArgument.WithMessage(`conflicting filters: "until" and "unused-for"`)
	}
	key := "until"
	if f.Has("unused-for") {
		key = "unused-for"
	}
	switch vs := f.Get(key); len(vs) {
	case 0:
	case 1:
		// Whole seconds, as ParseTime counts durations back from now:
		// "48h" keeps 48 hours exactly.
		now = time.Unix(now.Unix(), 0)
		t, err := filters.ParseTime(vs[0], now)
		if err != nil {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q filter expects a duration (e.g., '24h') or a timestamp", key))
		}
		o.KeepDuration = now.Sub(t)
	default:
		return cerrdefs.ErrInvalidArgument.WithMessage("filters expect only one value")
	}
	var exprs []string
	for _, field := range cacheFilterFields {
		vs, ok := f[field]
		if !ok {
			continue
		}
		switch len(vs) {
		case 0:
			exprs = append(exprs, field)
		case 1:
			op := "=="
			if field == "id" {
				op = "~="
			}
			exprs = append(exprs, field+op+vs[0])
		default:
			return cerrdefs.ErrInvalidArgument.WithMessage("filters expect only one value")
		}
	}
	o.Filters = nil
	if len(exprs) > 0 {
		o.Filters = []string{strings.Join(exprs, ",")}
	}
	return nil
}
