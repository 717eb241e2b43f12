package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var (
	imagesHeaderRE  = regexp.MustCompile(`^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$`)
	historyHeaderRE = regexp.MustCompile(`^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$`)
	shortIDRE       = regexp.MustCompile(`^[0-9a-f]{12}$`)
)

// imageRow is one row of the `images` table.
type imageRow struct{ Repo, Tag, ID, Rest string }

func parseImagesTable(t *testing.T, out string) []imageRow {
	t.Helper()
	ls := lines(out)
	if len(ls) == 0 || !imagesHeaderRE.MatchString(ls[0]) {
		t.Fatalf("images: first line %q, want the header REPOSITORY TAG IMAGE ID CREATED SIZE", first1(ls))
	}
	var rows []imageRow
	for _, l := range ls[1:] {
		f := regexp.MustCompile(`\s{2,}`).Split(l, -1)
		if len(f) != 5 {
			t.Fatalf("images: row %q does not have 5 columns", l)
		}
		rows = append(rows, imageRow{Repo: f[0], Tag: f[1], ID: f[2], Rest: f[3] + "|" + f[4]})
	}
	return rows
}

func first1(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return ls[0]
}

func hasRow(rows []imageRow, repo, tag, id string) bool {
	for _, r := range rows {
		if r.Repo == repo && r.Tag == tag && r.ID == id {
			return true
		}
	}
	return false
}

// TestImagesList: `images` table, -q, filters, --format, a repository
// argument.
func TestImagesList(t *testing.T) {
	a := requireEnv(t).api()
	ng := ensureImage(t, a, "nginx:alpine")
	bb := ensureImage(t, a, "busybox:latest")
	eachCLI(t, func(t *testing.T, c *CLI) {
		rows := parseImagesTable(t, c.ok("images").Stdout)
		if !hasRow(rows, "nginx", "alpine", shortID(ng.ID)) || !hasRow(rows, "busybox", "latest", shortID(bb.ID)) {
			t.Errorf("images: want rows nginx alpine %s and busybox latest %s, got %+v", shortID(ng.ID), shortID(bb.ID), rows)
		}
		for _, r := range rows {
			if !shortIDRE.MatchString(r.ID) {
				t.Errorf("images: IMAGE ID %q is not 12 hex digits", r.ID)
			}
			if !regexp.MustCompile(`(ago|Less than a second ago|N/A)\|[0-9.]+(B|kB|MB|GB)$`).MatchString(r.Rest) {
				t.Errorf("images: CREATED|SIZE %q not in docker's human form", r.Rest)
			}
		}
		if rows2 := parseImagesTable(t, c.ok("image", "ls").Stdout); len(rows2) != len(rows) {
			t.Errorf("image ls: %d rows, images: %d", len(rows2), len(rows))
		}

		q := lines(c.ok("images", "-q").Stdout)
		if len(q) != len(rows) {
			t.Errorf("images -q: %d lines, want one per row of images (%d)", len(q), len(rows))
		}
		for _, l := range q {
			if !shortIDRE.MatchString(l) {
				t.Errorf("images -q: line %q is not a 12-hex ID", l)
			}
		}
		if !contains(q, shortID(ng.ID)) || !contains(q, shortID(bb.ID)) {
			t.Errorf("images -q: want %s and %s among %q", shortID(ng.ID), shortID(bb.ID), q)
		}
		if q := lines(c.ok("images", "-q", "--no-trunc").Stdout); !contains(q, ng.ID) {
			t.Errorf("images -q --no-trunc: want %s among %q", ng.ID, q)
		}

		rows = parseImagesTable(t, c.ok("images", "--filter", "reference=nginx").Stdout)
		if len(rows) == 0 || !hasRow(rows, "nginx", "alpine", shortID(ng.ID)) {
			t.Errorf("images --filter reference=nginx: want the nginx alpine row, got %+v", rows)
		}
		for _, r := range rows {
			if r.Repo != "nginx" {
				t.Errorf("images --filter reference=nginx: unexpected row %+v", r)
			}
		}
		rows = parseImagesTable(t, c.ok("images", "--filter", "reference=busy*:lat*").Stdout)
		if len(rows) != 1 || !hasRow(rows, "busybox", "latest", shortID(bb.ID)) {
			t.Errorf("images --filter reference=busy*:lat*: want only busybox latest, got %+v", rows)
		}
		rows = parseImagesTable(t, c.ok("images", "busybox").Stdout)
		for _, r := range rows {
			if r.Repo != "busybox" {
				t.Errorf("images busybox: unexpected row %+v", r)
			}
		}
		if !hasRow(rows, "busybox", "latest", shortID(bb.ID)) {
			t.Errorf("images busybox: want the busybox latest row, got %+v", rows)
		}

		f := lines(c.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "--filter", "reference=nginx:alpine").Stdout)
		if len(f) != 1 || f[0] != "nginx:alpine "+shortID(ng.ID) {
			t.Errorf("images --format: %q, want [%q]", f, "nginx:alpine "+shortID(ng.ID))
		}
		var js struct{ Repository, Tag, ID string }
		f = lines(c.ok("images", "--format", "{{json .}}", "--filter", "reference=nginx:alpine").Stdout)
		if len(f) != 1 || json.Unmarshal([]byte(f[0]), &js) != nil || js.Repository != "nginx" || js.Tag != "alpine" || js.ID != shortID(ng.ID) {
			t.Errorf("images --format {{json .}}: %q", f)
		}
		if f := c.ok("images", "--filter", "reference=nosuch-e2e-*").Stdout; len(lines(f)) != 1 {
			t.Errorf("images with a filter matching nothing: want only the header, got %q", f)
		}
	})
}

// TestImagesAPIFilters: GET /images/json with filters, as the CLI sends them.
func TestImagesAPIFilters(t *testing.T) {
	a := requireEnv(t).api()
	ng := ensureImage(t, a, "nginx:alpine")
	ensureImage(t, a, "busybox:latest")
	var out []imageSummary
	a.call(t, "GET", "/images/json?filters="+url.QueryEscape(`{"reference":{"nginx:alpine":true}}`), nil, nil).wantStatus(t, 200).decode(t, &out)
	if len(out) != 1 || out[0].ID != ng.ID || fmt.Sprint(out[0].RepoTags) != "[nginx:alpine]" {
		t.Errorf("reference=nginx:alpine: %+v, want only %s [nginx:alpine]", out, ng.ID)
	}
	if out[0].Size <= 0 || out[0].Created <= 0 {
		t.Errorf("Size and Created must be set: %+v", out[0])
	}
	r := a.call(t, "GET", "/images/json?filters="+url.QueryEscape(`{"nosuchfilter":{"x":true}}`), nil, nil)
	// dockerd 20.10: 400 {"message":"Invalid filter 'nosuchfilter'"}
	r.wantError(t, 400, "nosuchfilter")
}

// TestDanglingAndPrune: an image pulled by digest has no tag: it is
// dangling, and `image prune -f` removes it.
func TestDanglingAndPrune(t *testing.T) {
	a := requireEnv(t).api()
	img := hubImage(t, "alpine:3.18")
	ref := "alpine@" + img.TagDigest
	eachCLI(t, func(t *testing.T, c *CLI) {
		bb := ensureImage(t, a, "busybox:latest")
		removeImageEverywhere(t, a, "alpine:3.18")
		removeImageEverywhere(t, a, ref)
		c.ok("pull", ref)
		id := inspectImage(t, a, ref).ID

		rows := parseImagesTable(t, c.ok("images", "--filter", "dangling=true").Stdout)
		if !hasRow(rows, "alpine", "<none>", shortID(id)) {
			t.Errorf("images --filter dangling=true: want the row alpine <none> %s, got %+v", shortID(id), rows)
		}
		for _, r := range rows {
			if r.Tag != "<none>" {
				t.Errorf("images --filter dangling=true: tagged row %+v", r)
			}
		}
		if q := lines(c.ok("images", "-q", "--filter", "dangling=true").Stdout); !contains(q, shortID(id)) {
			t.Errorf("images -q --filter dangling=true: want %s among %q", shortID(id), q)
		}

		r := c.ok("image", "prune", "-f")
		for _, want := range []string{"Deleted Images:", "deleted: " + id, "Total reclaimed space:"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("image prune -f: output does not contain %q", want)
			}
		}
		if imageExists(t, a, id) {
			t.Errorf("image %s still exists after image prune", id)
		}
		if !imageExists(t, a, bb.ID) {
			t.Errorf("image prune removed the tagged busybox:latest")
		}
		if f := c.ok("images", "--filter", "dangling=true", "-q").Stdout; strings.TrimSpace(f) != "" {
			t.Errorf("dangling images left after prune: %q", f)
		}
	})
}

// TestImageInspect: `image inspect` and `inspect` on an image name agree
// with the registry.
func TestImageInspect(t *testing.T) {
	a := requireEnv(t).api()
	img := hubImage(t, "nginx:alpine")
	ensureImage(t, a, "nginx:alpine")
	eachCLI(t, func(t *testing.T, c *CLI) {
		for _, args := range [][]string{{"image", "inspect", "nginx:alpine"}, {"inspect", "nginx:alpine"}} {
			r := c.ok(args...)
			var got []imageInspect
			if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || len(got) != 1 {
				t.Fatalf("%s: want a JSON array of one image: %v", strings.Join(args, " "), err)
			}
			g := got[0]
			if g.ID != img.ConfigDigest {
				t.Errorf("Id %s, want %s", g.ID, img.ConfigDigest)
			}
			if !contains(g.RepoTags, "nginx:alpine") {
				t.Errorf("RepoTags %q, want nginx:alpine", g.RepoTags)
			}
			if !contains(g.RepoDigests, "nginx@"+img.TagDigest) {
				t.Errorf("RepoDigests %q, want nginx@%s", g.RepoDigests, img.TagDigest)
			}
			if g.RootFS.Type != "layers" || len(g.RootFS.Layers) != len(img.Layers) ||
				strings.Join(g.RootFS.Layers, ",") != strings.Join(img.Config.RootFS.DiffIDs, ",") {
				t.Errorf("RootFS %+v, want layers %q (%d)", g.RootFS, img.Config.RootFS.DiffIDs, len(img.Layers))
			}
			if strings.Join(g.Config.Cmd, " ") != strings.Join(img.Config.Config.Cmd, " ") || len(g.Config.Cmd) == 0 {
				t.Errorf("Config.Cmd %q, want %q", g.Config.Cmd, img.Config.Config.Cmd)
			}
			if g.Size <= 0 {
				t.Errorf("Size %d, want > 0", g.Size)
			}
			if g.Architecture != "amd64" || g.Os != "linux" || g.Created == "" {
				t.Errorf("Architecture/Os/Created %q/%q/%q", g.Architecture, g.Os, g.Created)
			}
		}
		r := c.ok("image", "inspect", "--format", "{{.Id}} {{len .RootFS.Layers}}", "nginx:alpine")
		if want := fmt.Sprintf("%s %d", img.ConfigDigest, len(img.Layers)); strings.TrimSpace(r.Stdout) != want {
			t.Errorf("image inspect --format: %q, want %q", strings.TrimSpace(r.Stdout), want)
		}
		// By short and full ID too.
		for _, ref := range []string{shortID(img.ConfigDigest), img.ConfigDigest} {
			r := c.ok("image", "inspect", "--format", "{{.Id}}", ref)
			if strings.TrimSpace(r.Stdout) != img.ConfigDigest {
				t.Errorf("image inspect %s: %q, want %s", ref, strings.TrimSpace(r.Stdout), img.ConfigDigest)
			}
		}
	})
}

// TestInspectMissing: unknown names are 404s; `inspect` (which tries every
// object type) ends with the CLI's "No such object".
func TestInspectMissing(t *testing.T) {
	a := requireEnv(t).api()
	// dockerd 20.10: 404 {"message":"no such image: nosuchthing: No such image: nosuchthing:latest"}
	a.call(t, "GET", "/images/nosuchthing/json", nil, nil).wantError(t, 404, "No such image: nosuchthing:latest")
	// dockerd 20.10: 404 {"message":"No such image: nosuchthing:latest"}
	a.call(t, "GET", "/images/nosuchthing/history", nil, nil).wantError(t, 404, "No such image: nosuchthing:latest")
	a.call(t, "DELETE", "/images/nosuchthing", nil, nil).wantError(t, 404, "No such image: nosuchthing:latest")
	a.call(t, "POST", "/images/nosuchthing/tag?repo=e2e/x&tag=1", nil, nil).wantError(t, 404, "No such image: nosuchthing:latest")
	eachCLI(t, func(t *testing.T, c *CLI) {
		// docker: stdout "[]", stderr "Error: No such object: nosuchthing", exit 1.
		r := c.fail([]string{"inspect", "nosuchthing"}, "Error: No such object: nosuchthing")
		if strings.TrimSpace(r.Stdout) != "[]" {
			t.Errorf("inspect nosuchthing: stdout %q, want []", r.Stdout)
		}
		c.fail([]string{"image", "inspect", "nosuchthing"}, "Error response from daemon: ", "No such image: nosuchthing")
		c.fail([]string{"history", "nosuchthing"}, "Error response from daemon: No such image: nosuchthing:latest")
		c.fail([]string{"rmi", "nosuchthing"}, "Error response from daemon: No such image: nosuchthing:latest")
		c.fail([]string{"tag", "nosuchthing", "e2e/x:1"}, "Error response from daemon: No such image: nosuchthing:latest")
	})
}

// TestHistory: one row per history entry of the image config, newest
// first; the top row carries the image ID, the others <missing>.
func TestHistory(t *testing.T) {
	a := requireEnv(t).api()
	img := hubImage(t, "nginx:alpine")
	ensureImage(t, a, "nginx:alpine")
	n := len(img.Config.History)
	if n < 2 {
		t.Fatalf("registry: nginx:alpine has %d history entries; the test needs several", n)
	}
	newest := img.Config.History[n-1]

	var hist []struct {
		ID        string `json:"Id"`
		Created   int64
		CreatedBy string
		Tags      []string
		Size      int64
		Comment   string
	}
	a.call(t, "GET", "/images/nginx:alpine/history", nil, nil).wantStatus(t, 200).decode(t, &hist)
	if len(hist) != n {
		t.Fatalf("API history: %d entries, want %d", len(hist), n)
	}
	if hist[0].ID != img.ConfigDigest || fmt.Sprint(hist[0].Tags) != "[nginx:alpine]" || hist[0].CreatedBy != newest.CreatedBy {
		t.Errorf("API history[0] = %+v, want Id %s, Tags [nginx:alpine], CreatedBy %q", hist[0], img.ConfigDigest, newest.CreatedBy)
	}
	var sum int64
	for i, h := range hist {
		cfg := img.Config.History[n-1-i]
		if i > 0 && h.ID != "<missing>" {
			t.Errorf("API history[%d].Id %q, want <missing>", i, h.ID)
		}
		if cfg.EmptyLayer && h.Size != 0 {
			t.Errorf("API history[%d] (%q) is an empty layer but has Size %d", i, h.CreatedBy, h.Size)
		}
		if !cfg.EmptyLayer && h.Size <= 0 {
			t.Errorf("API history[%d] (%q) has a layer but Size %d", i, h.CreatedBy, h.Size)
		}
		if h.CreatedBy != cfg.CreatedBy {
			t.Errorf("API history[%d].CreatedBy %q, want %q", i, h.CreatedBy, cfg.CreatedBy)
		}
		sum += h.Size
	}
	if got := inspectImage(t, a, "nginx:alpine"); got.Size != sum {
		t.Errorf("image Size %d, want the sum of the history sizes %d", got.Size, sum)
	}

	eachCLI(t, func(t *testing.T, c *CLI) {
		ls := lines(c.ok("history", "nginx:alpine").Stdout)
		if len(ls) != n+1 || !historyHeaderRE.MatchString(ls[0]) {
			t.Fatalf("history: want the header and %d rows, got %d lines: %q", n, len(ls), ls)
		}
		if !strings.HasPrefix(ls[1], shortID(img.ConfigDigest)+" ") {
			t.Errorf("history: first row %q, want it to start with %s", ls[1], shortID(img.ConfigDigest))
		}
		for _, l := range ls[2:] {
			if !strings.HasPrefix(l, "<missing> ") {
				t.Errorf("history: row %q, want <missing> as IMAGE", l)
			}
		}
		long := false
		for _, h := range img.Config.History {
			if len(h.CreatedBy) > 45 {
				long = true
			}
		}
		if long && !strings.Contains(strings.Join(ls, "\n"), "…") {
			t.Errorf("history: long CREATED BY values must be truncated with …")
		}

		full := c.ok("history", "--no-trunc", "nginx:alpine").Stdout
		if ls := lines(full); len(ls) != n+1 || !strings.HasPrefix(ls[1], img.ConfigDigest+" ") {
			t.Errorf("history --no-trunc: want %d rows, the first starting with %s", n, img.ConfigDigest)
		}
		for _, h := range img.Config.History {
			if !strings.Contains(full, strings.TrimSpace(h.CreatedBy)) {
				t.Errorf("history --no-trunc: CREATED BY %q missing", h.CreatedBy)
			}
		}

		q := lines(c.ok("history", "-q", "nginx:alpine").Stdout)
		if len(q) != n || q[0] != shortID(img.ConfigDigest) {
			t.Errorf("history -q: %q, want %d lines starting with %s", q, n, shortID(img.ConfigDigest))
		}
		for _, l := range q[1:] {
			if l != "<missing>" {
				t.Errorf("history -q: line %q, want <missing>", l)
			}
		}

		f := lines(c.ok("history", "--format", "{{.ID}}|{{.Size}}", "--no-trunc", "nginx:alpine").Stdout)
		if len(f) != n || f[0] != img.ConfigDigest+"|"+humanSize(hist[0].Size) {
			t.Errorf("history --format: %q, want %d lines starting with %s|%s", f, n, img.ConfigDigest, humanSize(hist[0].Size))
		}
		for i, l := range f {
			if want := humanSize(hist[i].Size); !strings.HasSuffix(l, "|"+want) {
				t.Errorf("history --format line %d %q, want size %s", i, l, want)
			}
		}
	})
}

// humanSize is docker's units.HumanSizeWithPrecision(size, 3): decimal
// units, three significant digits.
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

// TestImagesFilterErrors (issue 14 item 8): images, image prune and search
// refuse filter values in dockerd's words: "Invalid filter 'key=[values]'";
// a reference pattern that cannot parse is path.Match's "syntax error in
// pattern" (dockerd answers 500 there, berth 400).
func TestImagesFilterErrors(t *testing.T) {
	busybox(t) // dockerd tries a pattern only on an image's tags
	a := requireEnv(t).api()
	q := func(f string) string { return "filters=" + url.QueryEscape(f) }
	a.call(t, "GET", "/images/json?"+q(`{"dangling":["x"]}`), nil, nil).wantError(t, 400, "Invalid filter 'dangling=[x]'")
	a.call(t, "GET", "/images/json?"+q(`{"bogus":["x"]}`), nil, nil).wantError(t, 400, "Invalid filter 'bogus'")
	a.call(t, "POST", "/images/prune?"+q(`{"dangling":["maybe"]}`), nil, nil).wantError(t, 400, "Invalid filter 'dangling=[maybe]'")
	a.call(t, "GET", "/images/json?"+q(`{"before":["e2e-no-such-image"]}`), nil, nil).wantError(t, 404, "No such image: e2e-no-such-image:latest")
	r := a.call(t, "GET", "/images/json?"+q(`{"reference":["["]}`), nil, nil)
	if r.Status < 400 || r.message() != "syntax error in pattern" {
		t.Errorf("images reference=[: %s, want an error \"syntax error in pattern\"", r)
	}
	onlyBerth(t, "dockerd 20.10 answers 500 for a reference pattern that cannot parse")
	r.wantStatus(t, 400)
}
