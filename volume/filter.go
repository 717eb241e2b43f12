package volume

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/filters"
)

// matcher selects volumes by the filters of GET /volumes and POST
// /volumes/prune. Values of one key are alternatives (any matches), except
// labels, which must all match; different keys must all match.
type matcher struct {
	args     filters.Args
	dangling *bool
}

// newListMatcher accepts Docker's list filters: dangling, driver, label, name.
func newListMatcher(args filters.Args) (*matcher, error) {
	if err := args.Validate("dangling", "driver", "label", "name"); err != nil {
		return nil, err
	}
	m := &matcher{args: args}
	if v, set, err := args.Bool("dangling"); err != nil {
		return nil, err
	} else if set {
		m.dangling = &v
	}
	return m, nil
}

// newPruneMatcher accepts Docker's prune filters: label, label!, all.
// Without all=true, only anonymous volumes match.
func newPruneMatcher(args filters.Args) (*matcher, error) {
	if err := args.Validate("label", "label!", "all"); err != nil {
		return nil, err
	}
	all := false
	switch vs := args.Get("all"); {
	case len(vs) > 1:
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'all=%s': only one value is expected", vs))
	case len(vs) == 1:
		v, err := strconv.ParseBool(vs[0])
		if err != nil {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'all': %v", err))
		}
		all = v
	}
	m := &matcher{args: filters.Args{}}
	for k, vs := range args {
		m.args[k] = slices.Clone(vs)
	}
	delete(m.args, "all")
	if !all {
		m.args["label"] = append(m.args["label"], AnonymousLabel)
	}
	return m, nil
}

func (m *matcher) match(sn snapshot) bool {
	if ds := m.args.Get("driver"); len(ds) > 0 && !slices.Contains(ds, sn.rec.Driver) {
		return false
	}
	if ns := m.args.Get("name"); len(ns) > 0 && !slices.ContainsFunc(ns, func(n string) bool { return nameMatches(n, sn.rec.Name) }) {
		return false
	}
	if !m.args.MatchLabels("label", sn.rec.Labels) {
		return false
	}
	if m.args.Has("label!") && m.args.MatchLabels("label!", sn.rec.Labels) {
		return false
	}
	if m.dangling != nil && *m.dangling != (sn.refs == 0) {
		return false
	}
	return true
}

// nameMatches is Docker's name filter: equal, or an unanchored regular
// expression that matches (an invalid expression matches nothing).
func nameMatches(filter, name string) bool {
	if filter == name {
		return true
	}
	ok, err := regexp.MatchString(filter, name)
	return err == nil && ok
}
