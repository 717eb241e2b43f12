// Package filters parses the "filters" query parameter of list and prune
// endpoints: a JSON object from a key to the values asked for, in either
// Docker's current form {"key":{"value":true}} or the old {"key":["value"]}.
package filters

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// Args maps a filter key to its values.
type Args map[string][]string

// Parse decodes the filters parameter. An empty string means no filters.
func Parse(s string) (Args, error) {
	args := Args{}
	if strings.TrimSpace(s) == "" {
		return args, nil
	}
	var modern map[string]map[string]bool
	if err := json.Unmarshal([]byte(s), &modern); err == nil {
		for k, vs := range modern {
			for v, on := range vs {
				if on {
					args[k] = append(args[k], v)
				}
			}
			sort.Strings(args[k])
		}
		return args, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(s), &legacy); err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("invalid filter: " + err.Error())
	}
	for k, vs := range legacy {
		args[k] = vs
	}
	return args, nil
}

// Validate rejects keys not in allowed, with Docker's wording.
func (a Args) Validate(allowed ...string) error {
	for k := range a {
		ok := false
		for _, x := range allowed {
			if k == x {
				ok = true
				break
			}
		}
		if !ok {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid filter '%s'", k))
		}
	}
	return nil
}

// Get returns the values for key.
func (a Args) Get(key string) []string { return a[key] }

// Has reports whether key was given.
func (a Args) Has(key string) bool { return len(a[key]) > 0 }

// MatchLabels reports whether labels satisfy every "label" filter value:
// "key" (present) or "key=value" (equal). Key "label!" negates.
func (a Args) MatchLabels(key string, labels map[string]string) bool {
	for _, f := range a[key] {
		k, v, hasValue := strings.Cut(f, "=")
		got, present := labels[k]
		if !present || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// InvalidValue is dockerd's error for values of key it cannot take:
// "Invalid filter 'key=[v1 v2]'" (its invalidFilter of the value list).
func (a Args) InvalidValue(key string) error {
	return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid filter '%s=%s'", key, a[key]))
}

// Bool returns the boolean value of key, and whether it was valid.
func (a Args) Bool(key string) (value bool, set bool, err error) {
	vs := a[key]
	if len(vs) == 0 {
		return false, false, nil
	}
	switch strings.ToLower(vs[0]) {
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, true, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s=%s'", key, vs[0]))
}
