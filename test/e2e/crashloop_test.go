package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The proof of issue 13: a crash loop. Each iteration starts a random mix
// of operations (run, start, stop, rm -v, exec, cp, commit, pull, pause,
// network connect, volume create) from several clients at once, kills the
// daemon with SIGKILL at a random moment (and sometimes the shim of a
// container), restarts it on the same roots and checks that nothing was
// lost:
//
//   - every record parses (berth: containers, volumes, networks) and the
//     daemon reports no damage;
//   - every container ps says is running has its process, alive and not
//     frozen unless paused; every live container process belongs to a
//     container that is running (berth: by its cgroup);
//   - no two running containers share an IP or a MAC address;
//   - no writable layer lost data written before the crash (a file the
//     container said it wrote, a file cp put there);
//   - no mount, shim, cgroup, veth or nftables rule is left without an
//     owner (berth);
//   - every container can be started, stopped and removed;
//
// and at the end, once everything is removed, that the daemon's disk
// usage is back to where it started.
//
// `make test` runs it for crashLoopShort; `make crashloop` as long as
// CRASHLOOP says (-crashloop=30m). -target=docker runs the same loop
// against dockerd with live-restore (its containers survive a kill -9 of
// dockerd, as berth's survive berthd's), for comparison; the checks that
// read berth's own state are berth's only.

var (
	flagCrashLoop = flag.Duration("crashloop", 0, "how long TestCrashLoop runs (0: crashLoopShort)")
	flagCrashSeed = flag.Int64("crashseed", 0, "seed of TestCrashLoop's random choices (0: from the clock)")
)

const crashLoopShort = 90 * time.Second

// loopCtr is what the loop knows of one container it created.
type loopCtr struct {
	name   string
	id     string // "" until known
	vol    string // named volume mounted at /vol, or ""
	net    string // user network, or "" (the default bridge)
	exits  bool   // the command exits after writing its marker
	policy string
	// cps are files PUT into the container that the daemon confirmed
	// (path → content): they must be there after any crash.
	cps map[string]string
	// removing: an rm was sent; after a crash the container may or may
	// not exist, but if it does it must work.
	removing bool
}

type crashLoop struct {
	t      *testing.T
	target string
	d      *daemon // the daemon now running
	first  *daemon // the first one (owns the roots)
	all    []*daemon
	opts   daemonOpts
	a      *apiClient
	prefix string // berth's kernel-object prefix (bridge <prefix>0)

	mu     sync.Mutex
	rng    *rand.Rand
	seq    int
	ctrs   map[string]*loopCtr
	vols   map[string]bool
	nets   map[string]bool
	images map[string]bool
	ops    map[string][2]int // op → ok, failed
	sample map[string]string // op → the last failure seen
	finds  map[string]int    // finding → how often

	iterations int
	shimKills  int
	transient  int             // problems of a container that moved on (see iterate)
	missingNet int             // starts refused: created on a network that does not exist (issue 14)
	ids        map[string]bool // every container ID the loop learnt
}

// noteID remembers a container ID the loop learnt (for the leftover checks
// and the reaper).
func (l *crashLoop) noteID(id string) {
	if !hexIDRE.MatchString(id) {
		return
	}
	l.mu.Lock()
	l.ids[id] = true
	l.mu.Unlock()
	noteContainer(id)
}

func (l *crashLoop) intn(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rng.Intn(n)
}

func (l *crashLoop) count(op string, ok bool) { l.countErr(op, ok, "") }

func (l *crashLoop) countErr(op string, ok bool, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok && why != "" {
		l.sample[op] = clip(why)
	}
	v := l.ops[op]
	if ok {
		v[0]++
	} else {
		v[1]++
	}
	l.ops[op] = v
}

// find records a violated invariant: a failure on berthd, whose promise
// it is; against dockerd a finding to compare with.
func (l *crashLoop) find(format string, args ...any) {
	l.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if l.target == "berth" {
		l.t.Errorf("iteration %d: %s", l.iterations, msg)
	} else {
		l.t.Logf("iteration %d: FINDING: %s", l.iterations, msg)
	}
	l.mu.Lock()
	key := msg
	if len(key) > 80 {
		key = key[:80]
	}
	l.finds[key]++
	l.mu.Unlock()
}

// call sends one request and reads the answer; a dead daemon is an error.
func (l *crashLoop) call(timeout time.Duration, method, path string, body []byte) (*apiResp, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.a.do(ctx, method, path, body, nil)
}

func (l *crashLoop) ok(op string, timeout time.Duration, method, path string, body []byte, want ...int) (*apiResp, bool) {
	r, err := l.call(timeout, method, path, body)
	good := err == nil
	why := fmt.Sprint(err)
	if good && len(want) > 0 {
		good = false
		for _, w := range want {
			good = good || r.Status == w
		}
		why = r.String()
	}
	l.countErr(op, good, why)
	if good && r.Status == 201 && op == "create" {
		var created struct{ Id string }
		if json.Unmarshal(r.Body, &created) == nil {
			l.noteID(created.Id)
		}
	}
	return r, good
}

func TestCrashLoop(t *testing.T) {
	requireEnv(t)
	dur := *flagCrashLoop
	if dur == 0 && env.target == "docker" {
		t.Skip("the crash loop runs against dockerd only when asked for (make crashloop-docker): it is a comparison, its findings are not failures")
	}
	if dur == 0 {
		dur = crashLoopShort
	}
	seed := *flagCrashSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("crash loop against %s for %s, seed %d (-crashseed to repeat)", env.target, dur, seed)
	l := &crashLoop{
		t: t, target: env.target, rng: rand.New(rand.NewSource(seed)),
		ctrs: map[string]*loopCtr{}, vols: map[string]bool{}, nets: map[string]bool{}, images: map[string]bool{},
		ops: map[string][2]int{}, sample: map[string]string{}, finds: map[string]int{}, ids: map[string]bool{},
	}
	l.opts = daemonOpts{mirror: true}
	if env.target == "docker" {
		// Containers outlive a kill -9 of dockerd, as berth's outlive
		// berthd's.
		l.opts.config = `{"live-restore": true}`
	}
	d := startTestDaemon(t, env.target, l.opts)
	l.first, l.d, l.all, l.a = d, d, []*daemon{d}, d.api()
	t.Cleanup(func() { reapContainerIDs(t, l.ids, l.all...) })
	ensureImage(t, l.a, "busybox:latest")
	if l.target == "berth" {
		var n struct{ Options map[string]string }
		l.a.call(t, "GET", "/networks/bridge", nil, nil).wantStatus(t, 200).decode(t, &n)
		l.prefix = strings.TrimSuffix(n.Options["com.docker.network.bridge.name"], "0")
	}
	baseline := l.diskUsage()
	t.Logf("disk usage at the start: %d KiB", baseline/1024)

	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		l.iterations++
		l.iterate()
	}
	l.removeEverything()
	var left int64
	poll(20*time.Second, func() bool {
		left = l.diskUsage()
		return left <= baseline+crashLoopDiskSlack
	})
	if left > baseline+crashLoopDiskSlack {
		l.find("disk usage after removing everything: %d KiB, at the start %d KiB:\n%s", left/1024, baseline/1024, l.bigFiles())
	}
	l.report()
}

// crashLoopDiskSlack is what the metadata databases may keep of what the
// loop made (bolt files grow, their free pages are reused).
const crashLoopDiskSlack = 2 << 20

func (l *crashLoop) report() {
	var b strings.Builder
	fmt.Fprintf(&b, "crash loop against %s: %d iterations, %d shims killed, %d problems of containers that moved on (not findings), %d starts refused for a network that does not exist (not findings: issue 14)\n", l.target, l.iterations, l.shimKills, l.transient, l.missingNet)
	var names []string
	for op := range l.ops {
		names = append(names, op)
	}
	sort.Strings(names)
	for _, op := range names {
		fmt.Fprintf(&b, "  %-14s %5d ok %5d failed", op, l.ops[op][0], l.ops[op][1])
		if why := l.sample[op]; why != "" {
			fmt.Fprintf(&b, "  (last: %s)", strings.ReplaceAll(why, "\n", " "))
		}
		b.WriteString("\n")
	}
	if len(l.finds) == 0 {
		b.WriteString("  no invariant was violated\n")
	}
	for f, n := range l.finds {
		fmt.Fprintf(&b, "  FINDING x%d: %s\n", n, f)
	}
	l.t.Log(b.String())
}

// ---- one iteration ----------------------------------------------------------

func (l *crashLoop) iterate() {
	t := l.t
	const workers = 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				l.randomOp()
			}
		}()
	}
	// The crash comes at a random moment of the operations.
	time.Sleep(time.Duration(100+l.intn(1900)) * time.Millisecond)
	if l.intn(4) == 0 {
		l.killAShim()
	}
	// No new operation from here on (they would fail in a busy loop
	// against a dead socket); those in flight meet the crash.
	close(stop)
	l.d.kill9()
	wg.Wait()

	o := l.opts
	if l.target == "docker" {
		o.args = append(o.args, "--containerd", filepath.Join(l.first.dir, "ctd.sock"))
	}
	d, err := l.first.restart(o)
	if err != nil {
		t.Fatalf("iteration %d: the daemon does not start after kill -9: %v", l.iterations, err)
	}
	l.d, l.a = d, d.api()
	l.all = append(l.all, d)
	t.Cleanup(func() {
		if t.Failed() && d == l.d {
			t.Logf("last lines of the daemon's log:\n%s", d.logTail(40))
		}
		_ = d.cleanup()
	})
	l.learnIDs()
	// Some states settle after a restart (restart policies, exits found,
	// removals finished): the invariants must hold within a bound.
	//
	// A problem of one container (its processes, shim, mounts, bridge
	// port, port rules while it is not running, or the other way round)
	// may be a moment of its restart policy's cycle caught between two
	// reads (a start under way, an exit being handled: under load a
	// flapping container is in one most of the time); it is a finding
	// when the container stayed as it was (status, PID, start and exit
	// times, restart count) from the first poll that saw the problem to
	// the last. One that moved on is logged, not counted.
	var problems []problem
	seen := map[string]string{} // container ID → its state when its problem was first seen
	poll(20*time.Second, func() bool {
		problems = l.invariants()
		for _, p := range problems {
			if _, ok := seen[p.id]; p.id != "" && !ok {
				seen[p.id] = l.stateOf(p.id)
			}
		}
		return len(problems) == 0
	})
	for _, p := range problems {
		if p.id != "" {
			if now := l.stateOf(p.id); now != seen[p.id] {
				l.t.Logf("iteration %d: not a finding, container %s moved on (%s -> %s) while it showed: %s", l.iterations, p.id[:12], seen[p.id], now, p.msg)
				l.mu.Lock()
				l.transient++
				l.mu.Unlock()
				continue
			}
		}
		l.find("%s", p.msg)
	}
	l.exercise()
}

// problem is a violated invariant, of container id ("" when it is not one
// container's).
type problem struct{ id, msg string }

// stateOf sums up where container id is in its life (inspect's status,
// PID, start and exit times, restart count), to tell one that moves on
// from one that is stuck.
func (l *crashLoop) stateOf(id string) string {
	r, err := l.call(30*time.Second, "GET", "/containers/"+id+"/json", nil)
	if err != nil {
		return "unknown: " + err.Error()
	}
	if r.Status == 404 {
		return "gone"
	}
	var ci ctrJSON
	if r.Status != 200 || json.Unmarshal(r.Body, &ci) != nil {
		return "unknown: " + r.String()
	}
	st := ci.State
	return fmt.Sprintf("%s pid %d started %s finished %s restarts %d", st.Status, st.Pid, st.StartedAt, st.FinishedAt, ci.RestartCount)
}

// randomOp runs one operation on the daemon; failures are expected (the
// daemon dies under it, two operations race) and only counted.
func (l *crashLoop) randomOp() {
	switch n := l.intn(100); {
	case n < 20:
		l.opRun()
	case n < 30:
		l.opStart()
	case n < 38:
		l.opStop()
	case n < 46:
		l.opRemove()
	case n < 58:
		l.opExec()
	case n < 68:
		l.opCp()
	case n < 74:
		l.opCommit()
	case n < 77:
		l.opPull()
	case n < 82:
		l.opPause()
	case n < 88:
		l.opConnect()
	case n < 94:
		l.opVolume()
	default:
		l.opNetwork()
	}
}

// pick returns a random container the loop made (nil if none).
func (l *crashLoop) pick() *loopCtr {
	l.mu.Lock()
	defer l.mu.Unlock()
	var names []string
	for n, c := range l.ctrs {
		if !c.removing {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return l.ctrs[names[l.rng.Intn(len(names))]]
}

func (l *crashLoop) pickFrom(m map[string]bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var names []string
	for n := range m {
		names = append(names, n)
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[l.rng.Intn(len(names))]
}

func (l *crashLoop) next(prefix string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	return fmt.Sprintf("%s%d", prefix, l.seq)
}

// markerScript writes the container's marker (and a file in its volume),
// says "ready" in its log once they are written, then runs on or exits.
// Each run writes them anew, by a rename: a run killed as it writes (its
// shim killed as it starts) leaves the last run's marker whole, never an
// empty one (crash loop: 'marker is ""', a run that truncated it and died
// before the write, the first run's "ready" still in the log).
func markerScript(c *loopCtr) string {
	s := fmt.Sprintf("echo data-%s > /marker.new && mv /marker.new /marker", c.name)
	if c.vol != "" {
		s += fmt.Sprintf(" && echo vol-%s > /vol/.%s.new && mv /vol/.%s.new /vol/%s", c.name, c.name, c.name, c.name)
	}
	s += " && echo ready"
	if c.exits {
		return s + "; sleep 0.2; exit 3"
	}
	return s + "; exec sleep 100000"
}

func (l *crashLoop) opRun() {
	l.mu.Lock()
	if len(l.ctrs) >= 10 {
		l.mu.Unlock()
		l.opRemove()
		return
	}
	l.mu.Unlock()
	c := &loopCtr{name: l.next("cl-"), cps: map[string]string{}}
	c.exits = l.intn(4) == 0
	switch l.intn(4) {
	case 0:
		c.policy = "always"
	case 1:
		c.policy = "on-failure"
	}
	if l.intn(3) == 0 {
		c.vol = l.pickFrom(l.vols)
	}
	if l.intn(3) == 0 {
		c.net = l.pickFrom(l.nets)
	}
	l.mu.Lock()
	l.ctrs[c.name] = c
	l.mu.Unlock()
	hc := map[string]any{"RestartPolicy": map[string]any{"Name": c.policy}}
	if c.vol != "" {
		hc["Binds"] = []string{c.vol + ":/vol"}
	}
	if c.net != "" {
		hc["NetworkMode"] = c.net
	}
	if l.intn(3) == 0 {
		hc["PortBindings"] = map[string]any{"80/tcp": []map[string]string{{"HostIp": "127.0.0.1", "HostPort": ""}}}
	}
	body, _ := json.Marshal(map[string]any{
		"Image": "busybox:latest", "Cmd": []string{"sh", "-c", markerScript(c)},
		"Volumes": map[string]any{"/anon": map[string]any{}}, "HostConfig": hc,
	})
	r, ok := l.ok("create", 30*time.Second, "POST", "/containers/create?name="+c.name, body, 201)
	if !ok {
		return
	}
	var out struct{ Id string }
	if json.Unmarshal(r.Body, &out) == nil {
		l.mu.Lock()
		c.id = out.Id
		l.mu.Unlock()
	}
	l.ok("start", 30*time.Second, "POST", "/containers/"+c.name+"/start", nil, 204)
}

func (l *crashLoop) opStart() {
	if c := l.pick(); c != nil {
		l.ok("start", 30*time.Second, "POST", "/containers/"+c.name+"/start", nil, 204, 304)
	}
}

func (l *crashLoop) opStop() {
	if c := l.pick(); c != nil {
		l.ok("stop", 30*time.Second, "POST", "/containers/"+c.name+"/stop?t=1", nil, 204, 304)
	}
}

func (l *crashLoop) opRemove() {
	c := l.pick()
	if c == nil {
		return
	}
	l.mu.Lock()
	c.removing = true
	l.mu.Unlock()
	if _, ok := l.ok("rm", 30*time.Second, "DELETE", "/containers/"+c.name+"?force=1&v=1", nil, 204); ok {
		l.mu.Lock()
		delete(l.ctrs, c.name)
		l.mu.Unlock()
	}
}

func (l *crashLoop) opExec() {
	c := l.pick()
	if c == nil {
		return
	}
	body := []byte(`{"Cmd":["sh","-c","echo exec >> /execlog"],"AttachStdout":false,"AttachStderr":false}`)
	r, ok := l.ok("exec", 30*time.Second, "POST", "/containers/"+c.name+"/exec", body, 201)
	if !ok {
		return
	}
	var ex struct{ Id string }
	if json.Unmarshal(r.Body, &ex) != nil {
		return
	}
	l.ok("exec-start", 30*time.Second, "POST", "/exec/"+ex.Id+"/start", []byte(`{"Detach":true}`), 200)
}

func (l *crashLoop) opCp() {
	c := l.pick()
	if c == nil {
		return
	}
	name := l.next("cp-")
	content := "content-of-" + name
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg, ModTime: time.Now()})
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := l.a.do(ctx, "PUT", "/containers/"+c.name+"/archive?path=/", buf.Bytes(), map[string][]string{"Content-Type": {"application/x-tar"}})
	ok := err == nil && r.Status == 200
	l.count("cp", ok)
	if ok {
		l.mu.Lock()
		c.cps["/"+name] = content
		l.mu.Unlock()
	}
}

func (l *crashLoop) opCommit() {
	c := l.pick()
	if c == nil {
		return
	}
	img := l.next("cl-img-")
	l.mu.Lock()
	l.images[img] = true
	l.mu.Unlock()
	l.ok("commit", 60*time.Second, "POST", "/commit?container="+c.name+"&repo="+img, nil, 201)
}

func (l *crashLoop) opPull() {
	l.mu.Lock()
	l.images["busybox:layers"] = true
	l.mu.Unlock()
	l.ok("pull", 60*time.Second, "POST", "/images/create?fromImage=busybox&tag=layers", nil, 200)
}

func (l *crashLoop) opPause() {
	c := l.pick()
	if c == nil {
		return
	}
	if l.intn(2) == 0 {
		l.ok("pause", 30*time.Second, "POST", "/containers/"+c.name+"/pause", nil, 204)
	} else {
		l.ok("unpause", 30*time.Second, "POST", "/containers/"+c.name+"/unpause", nil, 204)
	}
}

func (l *crashLoop) opConnect() {
	c, n := l.pick(), l.pickFrom(l.nets)
	if c == nil || n == "" {
		return
	}
	body, _ := json.Marshal(map[string]string{"Container": c.name})
	l.ok("net-connect", 30*time.Second, "POST", "/networks/"+n+"/connect", body, 200)
}

func (l *crashLoop) opVolume() {
	l.mu.Lock()
	if len(l.vols) >= 4 {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	v := l.next("clvol")
	l.mu.Lock()
	l.vols[v] = true
	l.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"Name": v})
	l.ok("volume-create", 30*time.Second, "POST", "/volumes/create", body, 201)
}

func (l *crashLoop) opNetwork() {
	l.mu.Lock()
	if len(l.nets) >= 2 {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	n := l.next("clnet")
	l.mu.Lock()
	l.nets[n] = true
	l.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"Name": n})
	l.ok("net-create", 30*time.Second, "POST", "/networks/create", body, 201)
}

// killAShim kills -9 the supervisor of a random running container (its
// init's parent: berth-shim, containerd-shim).
func (l *crashLoop) killAShim() {
	r, err := l.call(10*time.Second, "GET", "/containers/json", nil)
	if err != nil || r.Status != 200 {
		return
	}
	var cs []struct{ Id string }
	if json.Unmarshal(r.Body, &cs) != nil || len(cs) == 0 {
		return
	}
	id := cs[l.intn(len(cs))].Id
	r, err = l.call(10*time.Second, "GET", "/containers/"+id+"/json", nil)
	if err != nil || r.Status != 200 {
		return
	}
	var ci ctrJSON
	if json.Unmarshal(r.Body, &ci) != nil || ci.State.Pid == 0 {
		return
	}
	if shim := ppid(ci.State.Pid); shim > 1 && syscall.Kill(shim, syscall.SIGKILL) == nil {
		l.shimKills++
		l.count("shim-kill", true)
	}
}

// learnIDs finds out which of the containers whose create was cut short
// exist, and their IDs.
func (l *crashLoop) learnIDs() {
	l.mu.Lock()
	var names []string
	for n := range l.ctrs {
		names = append(names, n)
	}
	l.mu.Unlock()
	for _, n := range names {
		r, err := l.call(30*time.Second, "GET", "/containers/"+n+"/json", nil)
		l.mu.Lock()
		c := l.ctrs[n]
		switch {
		case err != nil:
		case r.Status == 404:
			delete(l.ctrs, n)
		case r.Status == 200:
			var ci ctrJSON
			if json.Unmarshal(r.Body, &ci) == nil && hexIDRE.MatchString(ci.ID) {
				c.id = ci.ID
				l.ids[ci.ID] = true
			}
		}
		l.mu.Unlock()
	}
}

// ---- invariants ---------------------------------------------------------------

// invariants checks the state of the restarted daemon; it returns what is
// wrong.
func (l *crashLoop) invariants() []problem {
	var out []problem
	add := func(format string, args ...any) { out = append(out, problem{"", fmt.Sprintf(format, args...)}) }
	addOf := func(id, format string, args ...any) { out = append(out, problem{id, fmt.Sprintf(format, args...)}) }
	if l.target == "berth" {
		for _, p := range l.recordsParse() {
			add("%s", p)
		}
	}
	for _, w := range l.warnings() {
		if strings.Contains(w, "damaged") || strings.Contains(w, "corrupt") || strings.Contains(w, "unreadable") {
			add("info reports damage: %s", w)
		}
	}
	r, err := l.call(30*time.Second, "GET", "/containers/json?all=1", nil)
	if err != nil || r.Status != 200 {
		add("GET /containers/json: %v %v", r, err)
		return out
	}
	var list []struct{ Id string }
	_ = json.Unmarshal(r.Body, &list)
	exists := map[string]ctrJSON{}
	ips, macs := map[string]string{}, map[string]string{}
	for _, e := range list {
		r, err := l.call(30*time.Second, "GET", "/containers/"+e.Id+"/json", nil)
		if err != nil || r.Status != 200 {
			add("inspect %s: %v %v", e.Id[:12], r, err)
			continue
		}
		var ci ctrJSON
		var ns struct {
			NetworkSettings struct {
				Networks map[string]struct{ IPAddress, MacAddress string }
			}
		}
		if json.Unmarshal(r.Body, &ci) != nil || json.Unmarshal(r.Body, &ns) != nil {
			add("inspect %s: body does not parse", e.Id[:12])
			continue
		}
		exists[ci.ID] = ci
		l.noteID(ci.ID)
		st := ci.State
		if st.Running {
			if st.Pid == 0 || !procAlive(st.Pid) {
				addOf(ci.ID, "%s %s: ps says running, its process %d is not alive", ci.Name, ci.ID[:12], st.Pid)
			}
			if l.target == "berth" {
				fs := freezerState(ci.ID)
				if st.Paused && fs != "FROZEN" {
					addOf(ci.ID, "%s: paused, but its freezer says %q", ci.Name, fs)
				}
				if !st.Paused && fs != "" && fs != "THAWED" {
					addOf(ci.ID, "%s: running and not paused, but its freezer says %q", ci.Name, fs)
				}
			}
			for n, ep := range ns.NetworkSettings.Networks {
				if ep.IPAddress != "" {
					if other, dup := ips[n+"/"+ep.IPAddress]; dup {
						add("%s and %s share IP %s on %s", ci.Name, other, ep.IPAddress, n)
					}
					ips[n+"/"+ep.IPAddress] = ci.Name
				}
				if ep.MacAddress != "" {
					if other, dup := macs[ep.MacAddress]; dup {
						add("%s and %s share MAC %s", ci.Name, other, ep.MacAddress)
					}
					macs[ep.MacAddress] = ci.Name
				}
			}
		}
	}
	// Data written before the crash.
	l.mu.Lock()
	var ctrs []*loopCtr
	for _, c := range l.ctrs {
		ctrs = append(ctrs, c)
	}
	l.mu.Unlock()
	for _, c := range ctrs {
		if c.id == "" {
			continue
		}
		if _, ok := exists[c.id]; !ok {
			if !c.removing {
				add("%s %s: vanished without an rm", c.name, c.id[:12])
			}
			continue
		}
		if l.loggedReady(c) {
			if got, err := l.readFile(c.name, "/marker"); err != nil || got != "data-"+c.name+"\n" {
				add("%s: its marker, written before the crash, is %q (%v); %s", c.name, got, err, l.markerContext(c))
			}
		}
		for p, want := range c.cps {
			if got, err := l.readFile(c.name, p); err != nil || got != want {
				add("%s: %s, put there by cp before the crash, is %q (%v)", c.name, p, got, err)
			}
		}
	}
	if l.target == "berth" {
		out = append(out, l.ownerless(exists)...)
	}
	return out
}

// recordsParse reads every record berth keeps as a file.
func (l *crashLoop) recordsParse() []string {
	var out []string
	root := l.d.dataRoot
	for _, pat := range []string{"containers/*/config.v2.json", "volumes/*/volume.json", "network/networks/*.json", "network/sandboxes/*.json"} {
		files, _ := filepath.Glob(filepath.Join(root, pat))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil && !json.Valid(b) {
				out = append(out, fmt.Sprintf("record %s does not parse: %q", f, clip(string(b))))
			}
		}
	}
	return out
}

func (l *crashLoop) warnings() []string {
	r, err := l.call(30*time.Second, "GET", "/info", nil)
	if err != nil || r.Status != 200 {
		return nil
	}
	var info struct{ Warnings []string }
	_ = json.Unmarshal(r.Body, &info)
	return info.Warnings
}

func (l *crashLoop) loggedReady(c *loopCtr) bool {
	r, err := l.call(30*time.Second, "GET", "/containers/"+c.name+"/logs?stdout=1&stderr=1", nil)
	return err == nil && r.Status == 200 && bytes.Contains(r.Body, []byte("ready"))
}

// markerContext tells what a finding about a container's marker needs:
// where the container is (a run that truncated the marker and has not
// written it yet, a frozen or stuck process), its output, the state of
// its processes.
func (l *crashLoop) markerContext(c *loopCtr) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state: %s; exits %v, policy %q", l.stateOf(c.id), c.exits, c.policy)
	if r, err := l.call(30*time.Second, "GET", "/containers/"+c.name+"/logs?stdout=1&stderr=1&timestamps=1", nil); err == nil {
		// The stream's frame headers dropped: only the text.
		text := strings.Map(func(r rune) rune {
			if r == '\n' || (r >= ' ' && r < 0x7f) {
				return r
			}
			return -1
		}, string(r.Body))
		fmt.Fprintf(&b, "; its log: %q", clip(text))
	}
	for _, pid := range cgroupProcs(c.id) {
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
		fmt.Fprintf(&b, "; process %s wchan %s", strings.TrimSpace(string(st)), wchan)
	}
	if l.target == "berth" {
		for _, f := range []string{"freezer/berth/" + c.id + "/freezer.state", "berth/" + c.id + "/cgroup.freeze"} {
			if fz, err := os.ReadFile("/sys/fs/cgroup/" + f); err == nil {
				fmt.Fprintf(&b, "; freezer %s", strings.TrimSpace(string(fz)))
			}
		}
		fmt.Fprintf(&b, "; the daemons' log on it:\n%s", l.logOf(c.id))
	}
	return b.String()
}

// readFile reads a file of a container through GET archive.
func (l *crashLoop) readFile(ctr, p string) (string, error) {
	r, err := l.call(30*time.Second, "GET", "/containers/"+ctr+"/archive?path="+url.QueryEscape(p), nil)
	if err != nil {
		return "", err
	}
	if r.Status != 200 {
		return "", fmt.Errorf("%s", r)
	}
	tr := tar.NewReader(bytes.NewReader(r.Body))
	if _, err := tr.Next(); err != nil {
		return "", err
	}
	var b bytes.Buffer
	_, err = b.ReadFrom(tr)
	return b.String(), err
}

// ownerless lists what berth left on the host that no container owns:
// processes in the cgroups of containers that are not running, rootfs
// mounts and shims of containers that are not running, leftovers of
// removed ones, veths beyond the running containers' endpoints, port rules
// of containers that are not running.
func (l *crashLoop) ownerless(exists map[string]ctrJSON) []problem {
	var out []problem
	add := func(format string, args ...any) { out = append(out, problem{"", fmt.Sprintf(format, args...)}) }
	addOf := func(id, format string, args ...any) { out = append(out, problem{id, fmt.Sprintf(format, args...)}) }
	known := knownContainerIDs(l.all...)
	l.mu.Lock()
	for id := range l.ids {
		known[id] = true
	}
	l.mu.Unlock()
	gone := map[string]bool{}
	for id := range known {
		ci, ok := exists[id]
		if !ok {
			gone[id] = true
		}
		procs := cgroupProcs(id)
		if len(procs) > 0 && (!ok || !ci.State.Running) {
			addOf(id, "container %s (exists %v, state %q): processes %v alive in its cgroup; the daemons' log on it:\n%s", id[:12], ok, ci.State.Status, procs, l.logOf(id))
		}
		if ok && !ci.State.Running {
			rootfs := filepath.Join(l.d.execRoot, "c", id[:16], "rootfs")
			if m := mountsUnder(rootfs); len(m) > 0 {
				addOf(id, "%s is not running (%s), its rootfs is mounted: %v", ci.Name, ci.State.Status, m)
			}
			if shims := shimsOf(id); len(shims) > 0 {
				addOf(id, "%s is not running (%s), shims %v serve it; the daemons' log on it:\n%s", ci.Name, ci.State.Status, shims, l.logOf(id))
			}
		}
	}
	// containerLeftovers takes every mount, shim and runc state under the
	// daemon's roots for a leftover (it runs once all is removed): here
	// those of the containers that exist are theirs.
	for _, left := range containerLeftovers(l.d, gone) {
		owned := false
		for id := range exists {
			owned = owned || strings.Contains(left, id[:16])
		}
		if !owned {
			add("left by a removed container: %s", left)
		}
	}
	// veths on berth's bridges: one per running container per bridge network.
	want := map[string]int{}
	on := map[string]map[string]bool{} // network → the running containers on it
	for _, ci := range exists {
		if !ci.State.Running {
			continue
		}
		var ns struct {
			NetworkSettings struct {
				Networks map[string]struct{ NetworkID string }
			}
		}
		if r, err := l.call(30*time.Second, "GET", "/containers/"+ci.ID+"/json", nil); err == nil && r.Status == 200 && json.Unmarshal(r.Body, &ns) == nil {
			for n := range ns.NetworkSettings.Networks {
				want[n]++
				if on[n] == nil {
					on[n] = map[string]bool{}
				}
				on[n][ci.ID] = true
			}
		}
	}
	r, err := l.call(30*time.Second, "GET", "/networks", nil)
	if err == nil && r.Status == 200 {
		var nets []struct {
			Name    string
			Driver  string
			Options map[string]string
			Id      string
		}
		_ = json.Unmarshal(r.Body, &nets)
		for _, n := range nets {
			if n.Driver != "bridge" {
				continue
			}
			br := n.Options["com.docker.network.bridge.name"]
			if br == "" {
				br = l.prefix + "-" + n.Id[:15-len(l.prefix)-1]
			}
			ports, _ := os.ReadDir("/sys/class/net/" + br + "/brif")
			if len(ports) == want[n.Name] {
				continue
			}
			// Whose ports they are (by the sandbox records): a finding
			// names its culprit, a container that is not running and has
			// a port, or runs without one.
			owners := l.vethOwners()
			has := map[string]bool{}
			var names []string
			for _, p := range ports {
				id, ok := owners[p.Name()]
				switch ci, known := exists[id]; {
				case !ok:
					names = append(names, p.Name()+"(no sandbox names it)")
				case !known:
					names = append(names, fmt.Sprintf("%s(%s, gone)", p.Name(), id[:12]))
				default:
					names = append(names, fmt.Sprintf("%s(%s %s %s)", p.Name(), ci.Name, id[:12], ci.State.Status))
				}
				if !ok {
					// A setup under way names its veth once plumbed: read
					// again.
					if _, err := os.Stat("/sys/class/net/" + br + "/brif/" + p.Name()); err == nil && l.vethOwners()[p.Name()] == "" {
						add("bridge %s of network %s: port %s, which no sandbox names", br, n.Name, p.Name())
					}
					continue
				}
				has[id] = true
				if !on[n.Name][id] {
					addOf(id, "bridge %s of network %s has port %s of container %s (%s), which is not running; the daemons' log on it:\n%s",
						br, n.Name, p.Name(), id[:12], exists[id].State.Status, l.logOf(id))
				}
			}
			for id := range on[n.Name] {
				if !has[id] {
					addOf(id, "container %s runs on network %s, its bridge %s has no port of it (ports %v); the daemons' log on it:\n%s",
						id[:12], n.Name, br, names, l.logOf(id))
				}
			}
		}
	}
	// nftables: port rules name their container ("c:<id>").
	if out2, err := runOut("nft", "list", "table", "ip", l.prefix); err == nil {
		for id := range known {
			if strings.Contains(out2, "c:"+id) {
				if ci, ok := exists[id]; !ok || !ci.State.Running {
					addOf(id, "nftables rule of container %s, which is not running", id[:12])
				}
			}
		}
	}
	return out
}

// vethOwners maps the host ends of veths that berth's sandbox records name
// to their containers' IDs.
func (l *crashLoop) vethOwners() map[string]string {
	out := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(l.d.dataRoot, "network", "sandboxes", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var sb struct {
			ContainerID string
			Endpoints   []struct{ HostVeth string }
		}
		if json.Unmarshal(b, &sb) != nil || !hexIDRE.MatchString(sb.ContainerID) {
			continue
		}
		for _, ep := range sb.Endpoints {
			if ep.HostVeth != "" {
				out[ep.HostVeth] = sb.ContainerID
			}
		}
	}
	return out
}

// logOf is the last lines of the daemons' logs that name container id
// (with the crashes between them), for a finding about it.
func (l *crashLoop) logOf(id string) string {
	var lines []string
	for i, d := range l.all {
		b, err := os.ReadFile(d.logPath)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, id) || strings.Contains(line, id[:12]) {
				lines = append(lines, fmt.Sprintf("  [daemon %d] %s", i, line))
			}
		}
	}
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// shimsOf lists the berth-shim processes serving container id.
func shimsOf(id string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("berth-shim")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if bytes.Contains(b, []byte(id)) && procAlive(pid) {
			out = append(out, filepath.Base(filepath.Dir(p)))
		}
	}
	return out
}

// ---- every container can be started, stopped, removed ------------------------

func (l *crashLoop) exercise() {
	r, err := l.call(30*time.Second, "GET", "/containers/json?all=1", nil)
	if err != nil || r.Status != 200 {
		l.find("GET /containers/json after the checks: %v %v", r, err)
		return
	}
	var list []struct {
		Id    string
		Names []string
		State string
	}
	_ = json.Unmarshal(r.Body, &list)
	for _, c := range list {
		name := strings.TrimPrefix(c.Names[0], "/")
		if c.State == "paused" {
			if r, err := l.call(30*time.Second, "POST", "/containers/"+c.Id+"/unpause", nil); err != nil || r.Status != 204 {
				l.find("unpause %s: %v %v", name, r, err)
			}
		}
		began := time.Now()
		if r, err := l.call(60*time.Second, "POST", "/containers/"+c.Id+"/start", nil); err != nil || (r.Status != 204 && r.Status != 304) {
			if net := l.missingNetwork(c.Id); err == nil && net != "" {
				// Created on a network whose create a crash cut short:
				// dockerd refuses such a create (404), berthd accepted it
				// until issue 14's fix, and both fail its start. Not this
				// loop's to count.
				l.t.Logf("iteration %d: not a finding, %s was created on network %s, which does not exist; its start: %v", l.iterations, name, net, r)
				l.mu.Lock()
				l.missingNet++
				l.mu.Unlock()
				continue
			}
			l.find("start %s (%s): %v %v", name, c.State, r, err)
			continue
		}
		switch l.intn(3) {
		case 0:
			if r, err := l.call(60*time.Second, "POST", "/containers/"+c.Id+"/stop?t=1", nil); err != nil || (r.Status != 204 && r.Status != 304) {
				l.find("stop %s: %v %v", name, r, err)
			} else if d := time.Since(began); d > 30*time.Second {
				l.find("start and stop of %s took %s", name, d)
			}
		case 1:
			if r, err := l.call(60*time.Second, "DELETE", "/containers/"+c.Id+"?force=1&v=1", nil); err != nil || r.Status != 204 {
				l.find("rm -f -v %s: %v %v", name, r, err)
			} else {
				l.mu.Lock()
				delete(l.ctrs, name)
				l.mu.Unlock()
			}
		}
	}
}

// missingNetwork is the user network container id was created on when
// that network does not exist, else "".
func (l *crashLoop) missingNetwork(id string) string {
	r, err := l.call(30*time.Second, "GET", "/containers/"+id+"/json", nil)
	if err != nil || r.Status != 200 {
		return ""
	}
	var ci struct{ HostConfig struct{ NetworkMode string } }
	if json.Unmarshal(r.Body, &ci) != nil {
		return ""
	}
	switch n := ci.HostConfig.NetworkMode; {
	case n == "" || n == "default" || n == "bridge" || n == "host" || n == "none" || strings.HasPrefix(n, "container:"):
		return ""
	default:
		if r, err := l.call(30*time.Second, "GET", "/networks/"+url.PathEscape(n), nil); err == nil && r.Status == 404 {
			return n
		}
	}
	return ""
}

// removeEverything removes what the loop made and checks nothing is left.
func (l *crashLoop) removeEverything() {
	r, err := l.call(30*time.Second, "GET", "/containers/json?all=1", nil)
	if err != nil || r.Status != 200 {
		l.find("GET /containers/json at the end: %v %v", r, err)
		return
	}
	var list []struct{ Id string }
	_ = json.Unmarshal(r.Body, &list)
	for _, c := range list {
		if r, err := l.call(60*time.Second, "DELETE", "/containers/"+c.Id+"?force=1&v=1", nil); err != nil || r.Status != 204 {
			l.find("rm -f -v %s at the end: %v %v", c.Id[:12], r, err)
		}
	}
	var vols struct{ Volumes []struct{ Name string } }
	if r, err := l.call(30*time.Second, "GET", "/volumes", nil); err == nil && r.Status == 200 {
		_ = json.Unmarshal(r.Body, &vols)
	}
	for _, v := range vols.Volumes {
		if r, err := l.call(30*time.Second, "DELETE", "/volumes/"+v.Name, nil); err != nil || r.Status != 204 {
			l.find("volume rm %s at the end: %v %v", v.Name, r, err)
		}
	}
	for n := range l.nets {
		if r, err := l.call(30*time.Second, "DELETE", "/networks/"+n, nil); err != nil || (r.Status != 204 && r.Status != 404) {
			l.find("network rm %s at the end: %v %v", n, r, err)
		}
	}
	for img := range l.images {
		if r, err := l.call(30*time.Second, "DELETE", "/images/"+img, nil); err != nil || (r.Status != 200 && r.Status != 404) {
			l.find("rmi %s at the end: %v %v", img, r, err)
		}
	}
	if l.target == "berth" {
		var left []problem
		poll(20*time.Second, func() bool {
			left = l.ownerless(map[string]ctrJSON{})
			return len(left) == 0
		})
		for _, p := range left {
			l.find("after removing everything: %s", p.msg)
		}
	}
}

// diskUsage is the space the daemon's files take (its data root; dockerd's
// containerd root too).
func (l *crashLoop) diskUsage() int64 {
	roots := []string{l.first.dataRoot}
	if l.target == "docker" {
		roots = append(roots, filepath.Join(l.first.dir, "containerd-root"))
	}
	var total int64
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if fi, err := de.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					total += st.Blocks * 512
				}
			}
			return nil
		})
	}
	return total
}

// bigFiles lists the largest files under the data root (for a report).
func (l *crashLoop) bigFiles() string {
	type f struct {
		p string
		n int64
	}
	var files []f
	_ = filepath.WalkDir(l.first.dataRoot, func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			if fi, err := de.Info(); err == nil {
				files = append(files, f{p, fi.Size()})
			}
		}
		return nil
	})
	sort.Slice(files, func(i, j int) bool { return files[i].n > files[j].n })
	var b strings.Builder
	for i := 0; i < len(files) && i < 15; i++ {
		fmt.Fprintf(&b, "  %10d %s\n", files[i].n, files[i].p)
	}
	return b.String()
}
