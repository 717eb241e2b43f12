package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/registry"

	"github.com/berth/berth/filters"
)

// Search answers GET /images/search: repositories whose name contains the
// term, from the registry the term names (Docker Hub when it names none).
// A registry is asked through the v1 search API that Docker Hub serves;
// one that lacks it (a distribution registry) through its catalog. For
// Docker Hub the configured mirrors are asked first, so search works where
// the mirrors are all there is. When no registry answers, the error says
// which were tried and why.
func (s *Service) Search(ctx context.Context, term string, limit int, args filters.Args, auth *registry.AuthConfig) ([]registry.SearchResult, error) {
	if limit == 0 {
		limit = 25
	}
	if limit < 1 || limit > 100 {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("limit %d is outside the range of [1, 100]", limit))
	}
	if err := args.Validate("is-automated", "is-official", "stars"); err != nil {
		return nil, err
	}
	official, officialSet, err := args.Bool("is-official")
	if err != nil {
		return nil, args.InvalidValue("is-official")
	}
	automated, automatedSet, err := args.Bool("is-automated")
	if err != nil {
		return nil, args.InvalidValue("is-automated")
	}
	minStars := 0
	for _, v := range args.Get("stars") {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid filter 'stars=%s'", v))
		}
		minStars = max(minStars, n)
	}
	index, query := splitSearchTerm(term)
	if query == "" {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("the search term is empty")
	}
	cfg := s.registryConfig()
	var bases []string
	if index == "docker.io" {
		for _, m := range cfg.Mirrors {
			bases = append(bases, strings.TrimSuffix(normalizeMirror(m), "/"))
		}
		bases = append(bases, "https://index.docker.io")
	} else {
		scheme := "https"
		if cfg.isInsecure(index) {
			scheme = "http"
		}
		bases = append(bases, scheme+"://"+index)
	}
	var errs []string
	for _, base := range bases {
		res, err := s.searchOne(ctx, base, index, query, limit, auth)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out := []registry.SearchResult{}
		for _, r := range res {
			// No repository is automated any more (the field is deprecated,
			// always false): is-automated=true matches none.
			if (officialSet && r.IsOfficial != official) || (automatedSet && automated) || r.StarCount < minStars {
				continue
			}
			out = append(out, r)
			if len(out) == limit {
				break
			}
		}
		return out, nil
	}
	return nil, cerrdefs.ErrUnavailable.WithMessage(fmt.Sprintf("cannot search %s for %q: %s", index, query, strings.Join(errs, "; ")))
}

// splitSearchTerm splits "host[:port]/name" into the registry and the
// query, as dockerd does; a term without a registry searches Docker Hub.
func splitSearchTerm(term string) (index, query string) {
	first, rest, ok := strings.Cut(term, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first, rest
	}
	return "docker.io", term
}

// searchOne asks one registry.
func (s *Service) searchOne(ctx context.Context, base, index, query string, limit int, auth *registry.AuthConfig) ([]registry.SearchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hc := &http.Client{Transport: s.transport}
	get := func(u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", "berth/"+s.version)
		if auth != nil && auth.Username != "" && index != "docker.io" {
			req.SetBasicAuth(auth.Username, auth.Password)
		}
		return hc.Do(req)
	}
	resp, err := get(base + "/v1/search?" + url.Values{"q": {query}, "n": {strconv.Itoa(limit)}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var r registry.SearchResults
		if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&r); err != nil {
			return nil, fmt.Errorf("%s: search answer: %w", base, err)
		}
		return r.Results, nil
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		// A registry without v1 search: its catalog.
	default:
		return nil, fmt.Errorf("%s: search: %s", base, resp.Status)
	}
	repos, err := catalog(get, base)
	if err != nil {
		return nil, err
	}
	q := strings.ToLower(query)
	var out []registry.SearchResult
	for _, repo := range repos {
		if !strings.Contains(strings.ToLower(repo), q) {
			continue
		}
		r := registry.SearchResult{Name: repo}
		if index == "docker.io" {
			if rest, ok := strings.CutPrefix(repo, "library/"); ok && !strings.Contains(rest, "/") {
				r.Name, r.IsOfficial = rest, true
			}
		} else {
			r.Name = path.Join(index, repo)
		}
		out = append(out, r)
	}
	return out, nil
}

// catalog lists a registry's repositories, following its pages (at most
// 20 of 1000 names each).
func catalog(get func(string) (*http.Response, error), base string) ([]string, error) {
	var repos []string
	next := "/v2/_catalog?n=1000"
	for page := 0; next != "" && page < 20; page++ {
		resp, err := get(base + next)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("%s: no search API, and its catalog answered %s", base, resp.Status)
		}
		var cat struct{ Repositories []string }
		err = json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&cat)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: catalog: %w", base, err)
		}
		repos = append(repos, cat.Repositories...)
		next = ""
		// Link: </v2/_catalog?last=x&n=1000>; rel="next"
		if l := resp.Header.Get("Link"); strings.Contains(l, `rel="next"`) {
			if i, j := strings.Index(l, "<"), strings.Index(l, ">"); i >= 0 && j > i {
				if u, err := url.Parse(l[i+1 : j]); err == nil {
					next = u.RequestURI()
				}
			}
		}
	}
	return repos, nil
}
