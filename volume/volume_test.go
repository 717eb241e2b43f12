package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/berth/berth/filters"
)

func newService(t *testing.T) *Service {
	t.Helper()
	s, err := New(tempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tempDir is t.TempDir that can be deleted without root even when the
// test left read-only directories in it (copies of an image's).
func tempDir(t *testing.T) string {
	dir := t.TempDir()
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return dir
}

func mustCreate(t *testing.T, s *Service, name string, labels, opts map[string]string) *volumetypes.Volume {
	t.Helper()
	v, err := s.Create(context.Background(), name, "", labels, opts)
	if err != nil {
		t.Fatalf("create %q: %v", name, err)
	}
	return v
}

func names(vs []volumetypes.Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	slices.Sort(out)
	return out
}

func wantErr(t *testing.T, err error, class func(error) bool, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", msg)
	}
	if class != nil && !class(err) {
		t.Errorf("error %q has the wrong class", err)
	}
	if err.Error() != msg {
		t.Errorf("error\n got %q\nwant %q", err.Error(), msg)
	}
}

func TestCreateGetRemove(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	v := mustCreate(t, s, "data", map[string]string{"a": "b"}, nil)
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" {
		t.Fatalf("volume %+v", v)
	}
	if want := filepath.Join(s.Root(), "data", "_data"); v.Mountpoint != want {
		t.Fatalf("mountpoint %q, want %q", v.Mountpoint, want)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("data dir: %v %v", fi, err)
	}
	if fi, _ := os.Stat(filepath.Dir(v.Mountpoint)); fi.Mode().Perm() != 0o701 {
		t.Fatalf("volume dir mode %v", fi.Mode())
	}
	if ts, err := time.Parse(time.RFC3339, v.CreatedAt); err != nil || time.Since(ts) > time.Minute {
		t.Fatalf("CreatedAt %q: %v", v.CreatedAt, err)
	}
	if v.Labels["a"] != "b" || v.Options != nil {
		t.Fatalf("labels %v options %v", v.Labels, v.Options)
	}

	got, err := s.Get(ctx, "data")
	if err != nil || got.Name != "data" || got.Mountpoint != v.Mountpoint {
		t.Fatalf("get: %+v %v", got, err)
	}
	_, err = s.Get(ctx, "nosuch")
	wantErr(t, err, cerrdefs.IsNotFound, "get nosuch: no such volume")

	if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "data")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume dir still there: %v", err)
	}
	_, err = s.Get(ctx, "data")
	wantErr(t, err, cerrdefs.IsNotFound, "get data: no such volume")
	assertNoLeftovers(t, s.Root())
}

// Docker keeps nil and {} apart: the CLI sends {} and sees {} back.
func TestCreateKeepsEmptyMaps(t *testing.T) {
	s := newService(t)
	v := mustCreate(t, s, "cli", map[string]string{}, map[string]string{})
	b, _ := json.Marshal(v)
	if !strings.Contains(string(b), `"Labels":{}`) || !strings.Contains(string(b), `"Options":{}`) {
		t.Fatalf("json %s", b)
	}
	v = mustCreate(t, s, "api", nil, nil)
	b, _ = json.Marshal(v)
	if !strings.Contains(string(b), `"Labels":null`) || !strings.Contains(string(b), `"Options":null`) {
		t.Fatalf("json %s", b)
	}
	// The same after a restart.
	s2, err := New(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	v, _ = s2.Get(context.Background(), "cli")
	b, _ = json.Marshal(v)
	if !strings.Contains(string(b), `"Labels":{}`) {
		t.Fatalf("after restart: %s", b)
	}
}

func TestCreateAnonymous(t *testing.T) {
	s := newService(t)
	labels := map[string]string{"x": "y"}
	v := mustCreate(t, s, "", labels, nil)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(v.Name) {
		t.Fatalf("name %q", v.Name)
	}
	if _, ok := v.Labels[AnonymousLabel]; !ok || v.Labels["x"] != "y" {
		t.Fatalf("labels %v", v.Labels)
	}
	if len(labels) != 1 {
		t.Fatalf("caller's labels changed: %v", labels)
	}
	w := mustCreate(t, s, "", nil, nil)
	if w.Name == v.Name {
		t.Fatal("two anonymous volumes share a name")
	}
}

func TestCreateIsIdempotent(t *testing.T) {
	s := newService(t)
	first := mustCreate(t, s, "same", map[string]string{"v": "1"}, nil)
	again := mustCreate(t, s, "same", map[string]string{"v": "2"}, map[string]string{"type": "tmpfs", "device": "tmpfs"})
	if again.Labels["v"] != "1" || again.Options != nil || again.CreatedAt != first.CreatedAt {
		t.Fatalf("existing volume changed: %+v", again)
	}
	// Even an invalid option does not matter when the volume exists, as
	// Docker checks for an existing volume first.
	if _, err := s.Create(context.Background(), "same", "local", nil, map[string]string{"bogus": "1"}); err != nil {
		t.Fatal(err)
	}

	// Racing creates of one name make one volume.
	var wg sync.WaitGroup
	got := make([]string, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Create(context.Background(), "raced", "", map[string]string{"i": fmt.Sprint(i)}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = v.Labels["i"]
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] {
			t.Fatalf("racing creates saw different volumes: %v", got)
		}
	}
	vs, _, _ := s.List(context.Background(), filters.Args{})
	if want := []string{"raced", "same"}; !slices.Equal(names(vs), want) {
		t.Fatalf("volumes %v", names(vs))
	}
}

func TestCreateBadInput(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	invalid := func(n string) string {
		return fmt.Sprintf(`create %s: %q includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, n, n)
	}
	for _, tc := range []struct {
		name, driver string
		opts         map[string]string
		class        func(error) bool
		msg          string
	}{
		{name: "x/y", class: cerrdefs.IsInvalidArgument, msg: invalid("x/y")},
		{name: "x y", class: cerrdefs.IsInvalidArgument, msg: invalid("x y")},
		{name: ".hidden", class: cerrdefs.IsInvalidArgument, msg: invalid(".hidden")},
		{name: "-dash", class: cerrdefs.IsInvalidArgument, msg: invalid("-dash")},
		{name: "..", class: cerrdefs.IsInvalidArgument, msg: invalid("..")},
		{name: `"q"`, class: cerrdefs.IsInvalidArgument, msg: `create "q": "\"q\"" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{name: "a", class: cerrdefs.IsInvalidArgument, msg: "create a: volume name is too short, names should be at least two alphanumeric characters"},
		{name: "v1", driver: "foo", class: cerrdefs.IsNotFound, msg: `create v1: error looking up volume plugin foo: plugin "foo" not found`},
		{name: "v1", opts: map[string]string{"bogus": "1"}, class: cerrdefs.IsInvalidArgument, msg: `create v1: invalid option: "bogus"`},
		{name: "v1", opts: map[string]string{"o": "size=1m"}, class: cerrdefs.IsInvalidArgument, msg: `create v1: missing required option: "device"`},
		{name: "v1", opts: map[string]string{"o": "size=1m", "device": "tmpfs"}, class: cerrdefs.IsInvalidArgument, msg: `create v1: missing required option: "type"`},
		{name: "v1", opts: map[string]string{"type": "tmpfs"}, class: cerrdefs.IsInvalidArgument, msg: `create v1: missing required option: "device"`},
		{name: "v1", opts: map[string]string{"size": "1m"}, class: cerrdefs.IsInvalidArgument, msg: "create v1: quota size requested but no quota support"},
		{name: "v1", opts: map[string]string{"size": "abc"}, class: cerrdefs.IsInvalidArgument, msg: "create v1: invalid size: 'abc'"},
	} {
		_, err := s.Create(ctx, tc.name, tc.driver, nil, tc.opts)
		wantErr(t, err, tc.class, tc.msg)
	}
	vs, _, _ := s.List(ctx, filters.Args{})
	if len(vs) != 0 {
		t.Fatalf("bad input made volumes: %v", names(vs))
	}
	assertNoLeftovers(t, s.Root())
	// "size=0" asks for no quota and is fine, as in Docker.
	mustCreate(t, s, "nosize", nil, map[string]string{"size": "0"})
}

func TestRemoveInUseAndMissing(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	mustCreate(t, s, "busy", nil, nil)
	c1, c2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
	mp, err := s.Acquire(ctx, "busy", c1)
	if err != nil || mp != filepath.Join(s.Root(), "busy", "_data") {
		t.Fatalf("acquire: %q %v", mp, err)
	}
	if _, err := s.Acquire(ctx, "busy", c2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, "busy", c1); err != nil { // twice is once
		t.Fatal(err)
	}
	want := fmt.Sprintf("remove busy: volume is in use - [%s, %s]", c1, c2)
	wantErr(t, s.Remove(ctx, "busy", false), cerrdefs.IsConflict, want)
	// force does not remove a volume in use either.
	wantErr(t, s.Remove(ctx, "busy", true), cerrdefs.IsConflict, want)

	// A stopped container still holds its reference.
	if err := s.Unmount(ctx, "busy", c1); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "busy", c2); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.Remove(ctx, "busy", false), cerrdefs.IsConflict, "remove busy: volume is in use - ["+c1+"]")
	if err := s.Release(ctx, "busy", c1); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "busy", c1); err != nil { // again: no error
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "busy", false); err != nil {
		t.Fatal(err)
	}

	wantErr(t, s.Remove(ctx, "nosuch", false), cerrdefs.IsNotFound, "get nosuch: no such volume")
	if err := s.Remove(ctx, "nosuch", true); err != nil {
		t.Fatalf("force remove of a missing volume: %v", err)
	}
	if err := s.Release(ctx, "nosuch", c1); err != nil {
		t.Fatalf("release of a missing volume: %v", err)
	}
	_, err = s.Acquire(ctx, "nosuch", c1)
	wantErr(t, err, cerrdefs.IsNotFound, "get nosuch: no such volume")
	_, err = s.Acquire(ctx, "nosuch", "")
	if !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("empty container ID: %v", err)
	}
}

func TestListFilters(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	mustCreate(t, s, "web-data", map[string]string{"app": "web", "tier": "front"}, nil)
	mustCreate(t, s, "web-logs", map[string]string{"app": "web"}, nil)
	mustCreate(t, s, "db", map[string]string{"app": "db"}, nil)
	mustCreate(t, s, "plain", nil, nil)
	if _, err := s.Acquire(ctx, "db", "c1"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args filters.Args
		want []string
	}{
		{filters.Args{}, []string{"db", "plain", "web-data", "web-logs"}},
		{filters.Args{"name": {"web"}}, []string{"web-data", "web-logs"}},
		{filters.Args{"name": {"^db$", "plain"}}, []string{"db", "plain"}},
		{filters.Args{"name": {"[invalid"}}, nil},
		{filters.Args{"label": {"app"}}, []string{"db", "web-data", "web-logs"}},
		{filters.Args{"label": {"app=web"}}, []string{"web-data", "web-logs"}},
		{filters.Args{"label": {"app=web", "tier=front"}}, []string{"web-data"}},
		{filters.Args{"driver": {"local"}}, []string{"db", "plain", "web-data", "web-logs"}},
		{filters.Args{"driver": {"other"}}, nil},
		{filters.Args{"dangling": {"true"}}, []string{"plain", "web-data", "web-logs"}},
		{filters.Args{"dangling": {"0"}}, []string{"db"}},
		{filters.Args{"dangling": {"false"}, "label": {"app"}}, []string{"db"}},
	} {
		vs, warnings, err := s.List(ctx, tc.args)
		if err != nil || warnings != nil {
			t.Fatalf("%v: %v %v", tc.args, err, warnings)
		}
		if got := names(vs); !slices.Equal(got, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.args, got, tc.want)
		}
	}
	vs, _, _ := s.List(ctx, filters.Args{})
	if !slices.IsSortedFunc(vs, func(a, b volumetypes.Volume) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("list is not sorted by name")
	}

	_, _, err := s.List(ctx, filters.Args{"label!": {"x"}})
	wantErr(t, err, cerrdefs.IsInvalidArgument, "Invalid filter 'label!'")
	_, _, err = s.List(ctx, filters.Args{"dangling": {"maybe"}})
	wantErr(t, err, cerrdefs.IsInvalidArgument, "invalid filter 'dangling=maybe'")
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	mustCreate(t, s, "named", nil, nil)
	mustCreate(t, s, "labelled", map[string]string{"keep": "no"}, nil)
	anon := mustCreate(t, s, "", nil, nil)
	busy := mustCreate(t, s, "", nil, nil)
	mustCreate(t, s, "tmp", nil, map[string]string{"type": "tmpfs", "device": "tmpfs"})
	if _, err := s.Acquire(ctx, busy.Name, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmount(ctx, busy.Name, "c1"); err != nil { // a stopped container's volume is kept too
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(anon.Mountpoint, "f"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/mounts", filepath.Join(anon.Mountpoint, "l")); err != nil {
		t.Fatal(err)
	}

	// By default only anonymous volumes go.
	rep, err := s.Prune(ctx, filters.Args{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.VolumesDeleted, []string{anon.Name}) || rep.SpaceReclaimed != 1000+uint64(len("/proc/mounts")) {
		t.Fatalf("prune: %+v", rep)
	}

	// Nothing left to prune: an empty list, not null.
	rep, err = s.Prune(ctx, filters.Args{})
	if err != nil || rep.VolumesDeleted == nil || len(rep.VolumesDeleted) != 0 {
		t.Fatalf("second prune: %+v %v", rep, err)
	}

	// Labels narrow all=true; label! excludes.
	rep, err = s.Prune(ctx, filters.Args{"all": {"true"}, "label!": {"keep=no"}})
	if err != nil || !slices.Equal(rep.VolumesDeleted, []string{"named"}) {
		t.Fatalf("prune label!: %+v %v", rep, err)
	}
	rep, err = s.Prune(ctx, filters.Args{"all": {"1"}})
	if err != nil || !slices.Equal(rep.VolumesDeleted, []string{"labelled"}) {
		t.Fatalf("prune all: %+v %v", rep, err)
	}
	vs, _, _ := s.List(ctx, filters.Args{})
	if want := []string{busy.Name, "tmp"}; !slices.Equal(names(vs), want) {
		t.Fatalf("left %v, want %v (in use, and with options)", names(vs), want)
	}

	_, err = s.Prune(ctx, filters.Args{"all": {"yes"}})
	wantErr(t, err, cerrdefs.IsInvalidArgument, `invalid filter 'all': strconv.ParseBool: parsing "yes": invalid syntax`)
	_, err = s.Prune(ctx, filters.Args{"all": {"true", "false"}})
	wantErr(t, err, cerrdefs.IsInvalidArgument, `invalid filter 'all=[true false]': only one value is expected`)
	_, err = s.Prune(ctx, filters.Args{"dangling": {"true"}})
	wantErr(t, err, cerrdefs.IsInvalidArgument, `Invalid filter 'dangling'`)

	s.pruning.Store(true)
	_, err = s.Prune(ctx, filters.Args{})
	wantErr(t, err, cerrdefs.IsConflict, "a prune operation is already running")
	s.pruning.Store(false)
}

func TestReferencesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	v := mustCreate(t, s, "keep", map[string]string{"l": "1"}, map[string]string{"size": "0"})
	if _, err := s.Acquire(ctx, "keep", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, "keep", "c2"); err != nil {
		t.Fatal(err)
	}

	s2, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Get(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt != v.CreatedAt || got.Labels["l"] != "1" || got.Options["size"] != "0" || got.Mountpoint != v.Mountpoint {
		t.Fatalf("after restart %+v, before %+v", got, v)
	}
	wantErr(t, s2.Remove(ctx, "keep", false), cerrdefs.IsConflict, "remove keep: volume is in use - [c1, c2]")

	// c1 was removed while the daemon was down, c2 still exists.
	err = s2.Reconcile(ctx, func(id string) (bool, bool) { return id == "c2", false }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if refs, _ := s2.Refs(ctx, "keep"); !slices.Equal(refs, []string{"c2"}) {
		t.Fatalf("refs after reconcile %v", refs)
	}
	if err := s2.Release(ctx, "keep", "c2"); err != nil {
		t.Fatal(err)
	}
	s3, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Remove(ctx, "keep", false); err != nil {
		t.Fatal(err)
	}
}

// A crash can leave: a half-made volume (.creating-*), a half-deleted one
// (.removing-*), and a metadata temp file that was never renamed. New must
// delete them all, keep the old metadata, and not show them as volumes.
func TestNewCleansCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "good", map[string]string{"v": "old"}, nil)

	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, data string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk(".creating-123/_data")
	write(".creating-123/volume.json", `{"Name":"half"}`)
	mk(".removing-gone-abc/_data/deep")
	write(".removing-gone-abc/_data/deep/file", "x")
	// An interrupted metadata update: new content in a temp file, torn.
	write("good/volume.json.tmp-999", `{"Name":"good","Labels":{"v":"ne`)
	// A volume directory without metadata (Docker's layout): adopted.
	mk("fromdocker/_data")
	write("fromdocker/_data/f", "12345")
	// Not volumes: no _data, an invalid name, a plain file.
	mk("junk")
	mk("lost+found")
	write("metadata.db", "bolt")
	// Metadata that cannot be read: the volume is rebuilt from its data,
	// the damaged record kept beside it, the damage reported.
	mk("broken/_data")
	write("broken/_data/kept", "precious")
	write("broken/volume.json", "{not json")
	// Metadata naming another volume: the same.
	mk("misnamed/_data")
	write("misnamed/volume.json", `{"Name":"other","Driver":"local"}`)

	s2, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{".creating-123", ".removing-gone-abc", "good/volume.json.tmp-999"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", gone, err)
		}
	}
	vs, warnings, err := s2.List(ctx, filters.Args{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"broken", "fromdocker", "good", "misnamed"}; !slices.Equal(names(vs), want) {
		t.Fatalf("volumes %v, want %v", names(vs), want)
	}
	brokenMeta := filepath.Join(root, "broken", "volume.json")
	if len(warnings) != 2 || !strings.Contains(warnings[0], "volume broken: its record "+brokenMeta+" was damaged (invalid character") ||
		!strings.Contains(warnings[0], "kept as "+brokenMeta+".damaged") || !strings.Contains(warnings[1], `volume misnamed: its record`) {
		t.Fatalf("warnings %q", warnings)
	}
	if d := s2.Damage(); !slices.Equal(d, warnings) {
		t.Fatalf("Damage() %q, want the warnings", d)
	}
	if b, _ := os.ReadFile(brokenMeta + ".damaged"); string(b) != "{not json" {
		t.Fatalf("the damaged record was not kept: %q", b)
	}
	if n, err := s2.Size(ctx, "broken"); err != nil || n != 8 {
		t.Fatalf("broken's data after the rebuild: %d %v", n, err)
	}
	// Rebuilt for good: a restart finds no damage.
	if s3, err := New(root); err != nil || len(s3.Damage()) != 0 {
		t.Fatalf("after the rebuild: %v %q", err, s3.Damage())
	}
	good, _ := s2.Get(ctx, "good")
	if good.Labels["v"] != "old" {
		t.Fatalf("good's labels %v", good.Labels)
	}
	fd, _ := s2.Get(ctx, "fromdocker")
	if fd.Driver != "local" || fd.CreatedAt == "" {
		t.Fatalf("adopted %+v", fd)
	}
	if n, err := s2.Size(ctx, "fromdocker"); err != nil || n != 5 {
		t.Fatalf("adopted size %d %v", n, err)
	}
}

// TestReconcileFindsHoldersAgain: a volume whose record was rebuilt lost
// its references; Reconcile takes them back from the containers' records,
// so the volume cannot be removed or pruned while a container holds it.
func TestReconcileFindsHoldersAgain(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "held", nil, nil)
	if _, err := s.Acquire(ctx, "held", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "held", "volume.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if refs, _ := s2.Refs(ctx, "held"); len(refs) != 0 {
		t.Fatalf("refs of the rebuilt record %v", refs)
	}
	state := func(id string) (bool, bool) { return id == "c1" || id == "c2", id == "c1" }
	if err := s2.Reconcile(ctx, state, map[string][]string{"held": {"c1", "gone"}, "missing": {"c2"}}); err != nil {
		t.Fatal(err)
	}
	if refs, _ := s2.Refs(ctx, "held"); !slices.Equal(refs, []string{"c1"}) {
		t.Fatalf("refs after reconcile %v, want [c1]", refs)
	}
	wantErr(t, s2.Remove(ctx, "held", false), cerrdefs.IsConflict, "remove held: volume is in use - [c1]")
	if rep, err := s2.Prune(ctx, filters.Args{"all": {"true"}}); err != nil || len(rep.VolumesDeleted) != 0 {
		t.Fatalf("prune removed a held volume: %+v %v", rep, err)
	}
	// The holds are on disk again.
	s3, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if refs, _ := s3.Refs(ctx, "held"); !slices.Equal(refs, []string{"c1"}) {
		t.Fatalf("refs after another restart %v", refs)
	}
}

func TestSizeAndDiskUsage(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	v := mustCreate(t, s, "sized", nil, nil)
	mustCreate(t, s, "mounted", nil, map[string]string{"type": "tmpfs", "device": "tmpfs"})
	mustCreate(t, s, "empty", map[string]string{}, map[string]string{})
	if err := os.MkdirAll(filepath.Join(v.Mountpoint, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(v.Mountpoint, "d", "f")
	if err := os.WriteFile(f, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(f, filepath.Join(v.Mountpoint, "hard")); err != nil { // counted once
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "g"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Size(ctx, "sized"); err != nil || n != 4099 {
		t.Fatalf("size %d %v", n, err)
	}
	if _, err := s.Size(ctx, "nosuch"); !cerrdefs.IsNotFound(err) {
		t.Fatalf("size of missing: %v", err)
	}
	if _, err := s.Acquire(ctx, "sized", "c1"); err != nil {
		t.Fatal(err)
	}
	du, err := s.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Docker leaves volumes with mount options out of df; {} is no options.
	if want := []string{"empty", "sized"}; !slices.Equal(names(du), want) {
		t.Fatalf("df volumes %v, want %v", names(du), want)
	}
	for _, d := range du {
		want := volumetypes.UsageData{Size: 0, RefCount: 0}
		if d.Name == "sized" {
			want = volumetypes.UsageData{Size: 4099, RefCount: 1}
		}
		if d.UsageData == nil || *d.UsageData != want {
			t.Errorf("%s usage %+v, want %+v", d.Name, d.UsageData, want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	mustCreate(t, s, "shared", nil, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("c%d", i)
			for range 20 {
				if _, err := s.Acquire(ctx, "shared", id); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := s.List(ctx, filters.Args{"dangling": {"false"}}); err != nil {
					t.Error(err)
				}
				if err := s.Remove(ctx, "shared", false); !cerrdefs.IsConflict(err) {
					t.Errorf("remove while acquired: %v", err)
				}
				if err := s.Release(ctx, "shared", id); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if refs, _ := s.Refs(ctx, "shared"); len(refs) != 0 {
		t.Fatalf("refs left: %v", refs)
	}
	if err := s.Remove(ctx, "shared", false); err != nil {
		t.Fatal(err)
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newService(t)
	if _, err := s.Create(ctx, "x1", "", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("create: %v", err)
	}
}

// assertNoLeftovers checks that no temporary directory or file remains.
func assertNoLeftovers(t *testing.T, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && (strings.HasPrefix(d.Name(), ".") || strings.Contains(d.Name(), ".tmp-")) && p != root {
			t.Errorf("leftover %s", p)
		}
		return nil
	})
}
