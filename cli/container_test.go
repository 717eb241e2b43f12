package cli

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/volume"
)

const ctrID = "3f2a6b1c9d8e7f60514a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e"

// fakeContainer plays one container for run/exec/logs tests: its output
// goes to whoever attached once it is started, then the wait returns its
// exit code.
type fakeContainer struct {
	mu       sync.Mutex
	noImage  int    // create answers "No such image" this many times
	notFound string // ... or this 404 message
	stdout   string // written on start
	stderr   string
	exitCode int
	tty      bool
	started  chan struct{}
	created  container.CreateRequest
	stdin    strings.Builder // what the CLI sent on the attach stream
	execCode int
}

func newFakeContainer() *fakeContainer {
	return &fakeContainer{started: make(chan struct{})}
}

// frame is one stdcopy frame.
func frame(stream byte, s string) []byte {
	b := make([]byte, 8, 8+len(s))
	b[0] = stream
	binary.BigEndian.PutUint32(b[4:], uint32(len(s)))
	return append(b, s...)
}

// hijack answers with docker's 101 and returns the raw connection.
func hijack(t *testing.T, w http.ResponseWriter) (io.ReadWriteCloser, *bufio.ReadWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Fatal("cannot hijack")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = rw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	_ = rw.Flush()
	return conn, rw
}

func (f *fakeContainer) output() []byte {
	if f.tty {
		return []byte(f.stdout + f.stderr)
	}
	var b []byte
	if f.stdout != "" {
		b = append(b, frame(1, f.stdout)...)
	}
	if f.stderr != "" {
		b = append(b, frame(2, f.stderr)...)
	}
	return b
}

// serve handles the container and exec endpoints.
func (f *fakeContainer) serve(t *testing.T) func(w http.ResponseWriter, r *http.Request, path string) bool {
	return func(w http.ResponseWriter, r *http.Request, path string) bool {
		switch {
		case path == "/containers/create":
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.noImage > 0 {
				f.noImage--
				msg := "No such image: busybox:latest"
				if f.notFound != "" {
					msg = f.notFound
				}
				notFound(w, msg)
				return true
			}
			_ = json.NewDecoder(r.Body).Decode(&f.created)
			f.tty = f.created.Tty
			writeJSON(w, http.StatusCreated, container.CreateResponse{ID: ctrID, Warnings: []string{}})
		case path == "/containers/"+ctrID+"/attach":
			conn, rw := hijack(t, w)
			go func() {
				defer conn.Close()
				<-f.started
				if r.URL.Query().Get("stdin") == "1" {
					// Like cat: read the input to its end (the CLI's
					// half-close), then answer.
					b, _ := io.ReadAll(rw)
					f.mu.Lock()
					f.stdin.Write(b)
					f.mu.Unlock()
				}
				_, _ = conn.Write(f.output())
			}()
		case path == "/containers/"+ctrID+"/wait":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-f.started:
			case <-r.Context().Done():
				return true
			}
			time.Sleep(20 * time.Millisecond)
			_ = json.NewEncoder(w).Encode(container.WaitResponse{StatusCode: int64(f.exitCode)})
		case path == "/containers/"+ctrID+"/start":
			close(f.started)
			w.WriteHeader(http.StatusNoContent)
		case path == "/containers/"+ctrID+"/resize":
			w.WriteHeader(http.StatusOK)
		case path == "/containers/"+ctrID+"/json" || path == "/containers/web/json":
			writeJSON(w, 200, map[string]any{
				"Id": ctrID, "Name": "/web", "State": map[string]any{"Running": true, "Status": "running"},
				"Config": map[string]any{"Tty": f.tty, "OpenStdin": false}, "HostConfig": map[string]any{},
			})
		case path == "/containers/"+ctrID+"/logs":
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(f.output())
		case path == "/containers/web/exec":
			writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: "exec1"})
		case path == "/exec/exec1/start":
			conn, _ := hijack(t, w)
			_, _ = conn.Write(f.output())
			conn.Close()
		case path == "/exec/exec1/json":
			code := f.execCode
			writeJSON(w, 200, container.ExecInspectResponse{ID: "exec1", Running: false, ExitCode: &code})
		default:
			return false
		}
		return true
	}
}

// callPaths returns the requests without their queries.
func callPaths(calls []string) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i], _, _ = strings.Cut(c, "?")
	}
	return out
}

func TestRunForeground(t *testing.T) {
	d := newFakeDaemon(t)
	f := newFakeContainer()
	f.stdout, f.stderr, f.exitCode = "hello\n", "oops\n", 3
	d.extra = f.serve(t)

	r := d.run(t, "", "", "run", "--name", "web", "busybox", "sh", "-c", "exit 3")
	if r.code != 3 || r.stdout != "hello\n" || r.stderr != "oops\n" {
		t.Fatalf("run: %+v", r)
	}
	calls := d.calls()
	want := []string{
		"POST /containers/create?name=web",
		"POST /containers/" + ctrID + "/attach?stderr=1&stdout=1&stream=1",
		"POST /containers/" + ctrID + "/wait?condition=next-exit",
		"POST /containers/" + ctrID + "/start",
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	c := f.created
	if c.Image != "busybox" || !c.AttachStdout || !c.AttachStderr || c.AttachStdin || c.OpenStdin ||
		strings.Join(c.Cmd, " ") != "sh -c exit 3" || c.HostConfig.NetworkMode != "default" || c.HostConfig.RestartPolicy.Name != "no" {
		t.Errorf("create request: %+v / %+v", c.Config, c.HostConfig)
	}
}

// TestRunPullsOnAny404: as the docker CLI, run pulls when create answers
// 404 of any kind (the class, not the words, decides), then creates again.
func TestRunPullsOnAny404(t *testing.T) {
	d := newFakeDaemon(t)
	d.pullStream = []string{`{"status":"Status: Image is up to date for busybox:latest"}`}
	f := newFakeContainer()
	f.noImage = 1
	f.notFound = "No such container: data"
	d.extra = f.serve(t)
	r := d.run(t, "", "", "run", "--rm", "busybox", "true")
	if r.code != 0 {
		t.Fatalf("run: %+v", r)
	}
	got := callPaths(d.calls())
	if len(got) < 3 || got[0] != "POST /containers/create" || got[1] != "POST /images/create" || got[2] != "POST /containers/create" {
		t.Errorf("requests: %q, want create, pull, create", got)
	}
	if !strings.HasPrefix(r.stderr, "Unable to find image 'busybox:latest' locally\n") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestRunPullsMissingImageAndRemoves(t *testing.T) {
	d := newFakeDaemon(t)
	d.pullStream = []string{
		`{"status":"Pulling from library/busybox","id":"latest"}`,
		`{"status":"Digest: sha256:abc"}`,
		`{"status":"Status: Downloaded newer image for busybox:latest"}`,
	}
	f := newFakeContainer()
	f.noImage = 1
	f.stdout = "hi\n"
	d.extra = f.serve(t)

	r := d.run(t, "", "in\n", "run", "--rm", "-i", "busybox", "cat")
	if r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("run: %+v", r)
	}
	wantErr := "Unable to find image 'busybox:latest' locally\nlatest: Pulling from library/busybox\nDigest: sha256:abc\nStatus: Downloaded newer image for busybox:latest\n"
	checkOutput(t, "stderr", r.stderr, wantErr)
	want := []string{
		"POST /containers/create",
		"POST /images/create",
		"POST /containers/create",
		"POST /containers/" + ctrID + "/attach",
		"POST /containers/" + ctrID + "/wait",
		"POST /containers/" + ctrID + "/start",
	}
	calls := d.calls()
	if got := callPaths(calls); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s", strings.Join(calls, "\n"))
	}
	if !strings.HasSuffix(calls[1], "fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest") {
		t.Errorf("pull request: %s", calls[1])
	}
	if !strings.Contains(calls[3], "stdin=1") || !strings.HasSuffix(calls[4], "condition=removed") {
		t.Errorf("attach/wait: %s / %s", calls[3], calls[4])
	}
	c := f.created
	if !c.AttachStdin || !c.OpenStdin || !c.StdinOnce || !c.HostConfig.AutoRemove {
		t.Errorf("create request: %+v / %+v", c.Config, c.HostConfig)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stdin.String() != "in\n" {
		t.Errorf("stdin sent = %q", f.stdin.String())
	}
}

func TestRunDetached(t *testing.T) {
	d := newFakeDaemon(t)
	f := newFakeContainer()
	d.extra = f.serve(t)
	r := d.run(t, "", "", "run", "-d", "-p", "8080:80", "nginx:alpine")
	if r.code != 0 || r.stdout != ctrID+"\n" || r.stderr != "" {
		t.Fatalf("run -d: %+v", r)
	}
	want := []string{"POST /containers/create", "POST /containers/" + ctrID + "/wait?condition=next-exit", "POST /containers/" + ctrID + "/start"}
	if got := d.calls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s", strings.Join(got, "\n"))
	}
	c := f.created
	if c.AttachStdout || c.AttachStderr || len(c.HostConfig.PortBindings) != 1 {
		t.Errorf("create request: %+v / %+v", c.Config, c.HostConfig)
	}

	r = d.run(t, "", "", "run", "-d", "-a", "stdout", "busybox")
	if r.code != 1 || r.stderr != "conflicting options: cannot specify both --attach and --detach\n" {
		t.Errorf("-d -a: %+v", r)
	}
	r = d.run(t, "", "", "run", "-t", "-i", "busybox")
	if r.code != 1 || r.stderr != "the input device is not a TTY\n" {
		t.Errorf("-it without a terminal: %+v", r)
	}
}

func TestRunErrors(t *testing.T) {
	d := newFakeDaemon(t)
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"run", "-p", "abc", "busybox"}, 125, "berth: invalid containerPort: abc\n\nRun 'berth run --help' for more information\n"},
		{[]string{"create", "-p", "99999:80", "busybox"}, 125, "berth: invalid hostPort: 99999\n\nRun 'berth create --help' for more information\n"},
		{[]string{"run", "--ulimit", "nofile", "busybox"}, 125, "invalid argument \"nofile\" for \"--ulimit\" flag: invalid ulimit argument: nofile\n\n" +
			"Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n"},
		{[]string{"run", "--pull", "foo", "busybox"}, 125, "berth: invalid pull option: 'foo': must be one of \"always\", \"missing\" or \"never\"\n\nRun 'berth run --help' for more information\n"},
		{[]string{"run", "--restart", "on-failure:x", "busybox"}, 125, "berth: invalid restart policy format: maximum retry count must be an integer\n\nRun 'berth run --help' for more information\n"},
		{[]string{"run"}, 1, "berth: 'berth run' requires at least 1 argument\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'berth run --help' for more information\n"},
	}
	for _, tt := range tests {
		r := d.run(t, "", "", tt.args...)
		if r.code != tt.code || r.stderr != tt.stderr {
			t.Errorf("berth %s: code %d, stderr:\n%s\nwant code %d, stderr:\n%s", strings.Join(tt.args, " "), r.code, r.stderr, tt.code, tt.stderr)
		}
	}

	// --pull never: a missing image is an error, nothing is pulled.
	f := newFakeContainer()
	f.noImage = 1
	d.extra = f.serve(t)
	r := d.run(t, "", "", "run", "--pull", "never", "busybox")
	if r.code != 125 || r.stderr != "berth: Error response from daemon: No such image: busybox:latest\n\nRun 'berth run --help' for more information\n" {
		t.Errorf("--pull never: %+v", r)
	}
	if calls := d.calls(); calls[len(calls)-1] != "POST /containers/create" {
		t.Errorf("--pull never pulled: %v", calls)
	}
}

func TestStartErrorStatus(t *testing.T) {
	for msg, code := range map[string]int{
		`exec: "nosuch": executable file not found in $PATH: unknown`: 127,
		`open /x: no such file or directory`:                          127,
		`exec: "/etc": permission denied: unknown`:                    126,
		`something else`: 125,
	} {
		err := startErrorStatus(errString(msg), "run")
		if ExitCode(err) != code || !strings.HasPrefix(err.Error(), "berth: "+msg+"\n\nRun 'berth run --help'") {
			t.Errorf("%q: code %d, message %q", msg, ExitCode(err), err.Error())
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestExecExitCodeAndStreams(t *testing.T) {
	d := newFakeDaemon(t)
	f := newFakeContainer()
	f.stdout, f.stderr, f.execCode = "root:x:0:0\n", "to-stderr\n", 3
	d.extra = f.serve(t)
	r := d.run(t, "", "", "exec", "web", "sh", "-c", "exit 3")
	if r.code != 3 || r.stdout != "root:x:0:0\n" || r.stderr != "to-stderr\n" {
		t.Fatalf("exec: %+v", r)
	}
	want := []string{"GET /containers/web/json", "POST /containers/web/exec", "POST /exec/exec1/start", "GET /exec/exec1/json"}
	if got := d.calls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s", strings.Join(got, "\n"))
	}
	r = d.run(t, "", "", "exec", "nosuch", "ls")
	if r.code != 1 || r.stderr != "Error response from daemon: No such container: nosuch\n" {
		t.Errorf("exec nosuch: %+v", r)
	}
}

func TestLogsDemux(t *testing.T) {
	d := newFakeDaemon(t)
	f := newFakeContainer()
	f.stdout, f.stderr = "out line\n", "err line\n"
	d.extra = f.serve(t)
	r := d.run(t, "", "", "logs", "--tail", "5", "-t", "web")
	if r.code != 0 || r.stdout != "out line\n" || r.stderr != "err line\n" {
		t.Fatalf("logs: %+v", r)
	}
	calls := d.calls()
	if len(calls) != 2 || calls[0] != "GET /containers/web/json" ||
		calls[1] != "GET /containers/"+ctrID+"/logs?stderr=1&stdout=1&tail=5&timestamps=1" {
		t.Errorf("requests: %v", calls)
	}
}

func TestPsTable(t *testing.T) {
	d := newFakeDaemon(t)
	now := fixedNow.Unix()
	list := []map[string]any{
		{"Id": ctrID, "Names": []string{"/web"}, "Image": "nginx:alpine", "ImageID": "sha256:5146dd08d7a7",
			"Command": `sh -c 'echo nginx stand-in; exec httpd -f'`, "Created": now - 120, "State": "running", "Status": "Up 2 minutes",
			"Ports":  []map[string]any{{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}},
			"Labels": map[string]string{"b": "2", "a": "1"}, "SizeRw": 12, "SizeRootFs": 1982352},
		{"Id": "0123456789ab" + strings.Repeat("0", 52), "Names": []string{"/old", "/web/link"}, "Image": "sha256:5146dd08d7a7c0a05c43f03a4f9c621b0324a8e90844f7eb156427c20fc72200",
			"ImageID": "sha256:5146dd08d7a7c0a05c43f03a4f9c621b0324a8e90844f7eb156427c20fc72200",
			"Command": "true", "Created": now - 3600, "State": "exited", "Status": "Exited (0) 59 minutes ago"},
	}
	d.extra = func(w http.ResponseWriter, r *http.Request, path string) bool {
		if path != "/containers/json" {
			return false
		}
		writeJSON(w, 200, list)
		return true
	}
	r := d.run(t, "", "", "ps", "-a")
	checkOutput(t, "ps -a", r.stdout, ""+
		"CONTAINER ID   IMAGE          COMMAND                  CREATED             STATUS                      PORTS                  NAMES\n"+
		"3f2a6b1c9d8e   nginx:alpine   \"sh -c 'echo nginx s…\"   2 minutes ago       Up 2 minutes                0.0.0.0:8080->80/tcp   web\n"+
		"0123456789ab   5146dd08d7a7   \"true\"                   About an hour ago   Exited (0) 59 minutes ago                          old\n")
	if calls := d.calls(); calls[len(calls)-1] != "GET /containers/json?all=1" {
		t.Errorf("ps -a request: %s", calls[len(calls)-1])
	}

	r = d.run(t, "", "", "ps", "-q", "--no-trunc")
	checkOutput(t, "ps -q --no-trunc", r.stdout, ctrID+"\n0123456789ab"+strings.Repeat("0", 52)+"\n")

	r = d.run(t, "", "", "ps", "-s", "--format", "{{.Names}} {{.Size}} {{.Labels}} {{.Label \"a\"}}")
	checkOutput(t, "ps --format", r.stdout, "web 12B (virtual 1.98MB) a=1,b=2 1\nold 0B  \n")
	if calls := d.calls(); calls[len(calls)-1] != "GET /containers/json?size=1" {
		t.Errorf("ps -s request: %s", calls[len(calls)-1])
	}

	r = d.run(t, "", "", "ps", "-n", "2", "-f", "status=exited")
	if calls := d.calls(); !strings.Contains(calls[len(calls)-1], "limit=2") || !strings.Contains(calls[len(calls)-1], "filters=") {
		t.Errorf("ps -n -f request: %s", calls[len(calls)-1])
	}

	r = d.run(t, "", "", "ps", "--format", "json")
	first := strings.SplitN(r.stdout, "\n", 2)[0]
	want := `{"Command":"\"sh -c 'echo nginx s…\"","CreatedAt":"` + time.Unix(now-120, 0).String() + `","ID":"3f2a6b1c9d8e","Image":"nginx:alpine",` +
		`"Labels":"a=1,b=2","LocalVolumes":"0","Mounts":"","Names":"web","Networks":"","Platform":null,"Ports":"0.0.0.0:8080-\u003e80/tcp",` +
		`"RunningFor":"2 minutes ago","Size":"12B (virtual 1.98MB)","State":"running","Status":"Up 2 minutes"}`
	checkOutput(t, "ps --format json", first, want)
}

func TestMultiContainerErrors(t *testing.T) {
	d := newFakeDaemon(t)
	d.extra = func(w http.ResponseWriter, r *http.Request, path string) bool {
		if path == "/containers/ok/stop" || path == "/containers/ok/kill" || path == "/containers/ok" {
			w.WriteHeader(http.StatusNoContent)
			return true
		}
		return false
	}
	r := d.run(t, "", "", "stop", "-t", "3", "ok", "nosuch", "nosuch2")
	if r.code != 1 || r.stdout != "ok\n" ||
		r.stderr != "Error response from daemon: No such container: nosuch/stop\nError response from daemon: No such container: nosuch2/stop\n" {
		t.Errorf("stop: %+v", r)
	}
	if calls := d.calls(); calls[0] != "POST /containers/ok/stop?t=3" {
		t.Errorf("stop request: %s", calls[0])
	}
	r = d.run(t, "", "", "kill", "-s", "HUP", "ok")
	if r.code != 0 || r.stdout != "ok\n" {
		t.Errorf("kill: %+v", r)
	}
	if calls := d.calls(); calls[len(calls)-1] != "POST /containers/ok/kill?signal=HUP" {
		t.Errorf("kill request: %s", calls[len(calls)-1])
	}
	r = d.run(t, "", "", "rm", "-f", "-v", "ok")
	if calls := d.calls(); r.code != 0 || calls[len(calls)-1] != "DELETE /containers/ok?force=1&v=1" {
		t.Errorf("rm -fv: %+v %s", r, calls[len(calls)-1])
	}
	r = d.run(t, "", "", "start", "nosuch")
	if r.code != 1 || r.stderr != "Error response from daemon: No such container: nosuch/start\nError: failed to start containers: nosuch\n" {
		t.Errorf("start: %+v", r)
	}
}

func TestVolumeCommands(t *testing.T) {
	d := newFakeDaemon(t)
	var created map[string]any
	d.extra = func(w http.ResponseWriter, r *http.Request, path string) bool {
		switch {
		case path == "/volumes/create":
			_ = json.NewDecoder(r.Body).Decode(&created)
			writeJSON(w, 201, volume.Volume{Name: "v1", Driver: "local"})
		case path == "/volumes" && r.Method == http.MethodGet:
			writeJSON(w, 200, volume.ListResponse{Volumes: []volume.Volume{
				{Name: "v10", Driver: "local", Mountpoint: "/d/v10"}, {Name: "v2", Driver: "local", Labels: map[string]string{"a": "b"}},
			}})
		default:
			return false
		}
		return true
	}
	r := d.run(t, "", "", "volume", "create", "-d", "local", "-o", "type=tmpfs", "--label", "a=b", "v1")
	if r.code != 0 || r.stdout != "v1\n" || created["Name"] != "v1" || created["DriverOpts"].(map[string]any)["type"] != "tmpfs" {
		t.Errorf("volume create: %+v %v", r, created)
	}
	r = d.run(t, "", "", "volume", "ls")
	checkOutput(t, "volume ls", r.stdout, "DRIVER    VOLUME NAME\nlocal     v2\nlocal     v10\n")
	r = d.run(t, "", "", "volume", "ls", "-q")
	checkOutput(t, "volume ls -q", r.stdout, "v2\nv10\n")
	r = d.run(t, "", "", "volume", "ls", "--format", "{{.Name}}:{{.Labels}}:{{.Label \"a\"}}")
	checkOutput(t, "volume ls --format", r.stdout, "v2:a=b:b\nv10::\n")
	r = d.run(t, "", "", "volume", "create", "--name", "a", "b")
	if r.code != 1 || r.stderr != "conflicting options: cannot specify a volume-name through both --name and as a positional arg\n" {
		t.Errorf("volume create --name a b: %+v", r)
	}
}

func TestNetworkCreateIPAM(t *testing.T) {
	d := newFakeDaemon(t)
	var created map[string]any
	d.extra = func(w http.ResponseWriter, r *http.Request, path string) bool {
		if path != "/networks/create" {
			return false
		}
		_ = json.NewDecoder(r.Body).Decode(&created)
		writeJSON(w, 201, map[string]any{"Id": "netid"})
		return true
	}
	r := d.run(t, "", "", "network", "create", "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.1", "--ip-range", "10.77.0.128/25", "--internal", "--label", "x=y", "n1")
	if r.code != 0 || r.stdout != "netid\n" {
		t.Fatalf("network create: %+v", r)
	}
	ipam, _ := json.Marshal(created["IPAM"])
	if string(ipam) != `{"Config":[{"Gateway":"10.77.0.1","IPRange":"10.77.0.128/25","Subnet":"10.77.0.0/24"}],"Driver":"default","Options":{}}` ||
		created["Name"] != "n1" || created["Driver"] != "bridge" || created["Internal"] != true {
		t.Errorf("create body: %v, IPAM %s", created, ipam)
	}
	for _, tt := range []struct{ args, msg string }{
		{"--gateway 1.2.3.4 n2", "every ip-range or gateway must have a corresponding subnet"},
		{"--subnet 10.78.0.0/24 --gateway abc n2", "no matching subnet for gateway abc"},
		{"--subnet 10.78.0.0/24 --gateway 10.79.0.1 n2", "no matching subnet for gateway 10.79.0.1"},
		{"--subnet 10.78.0.0/16 --subnet 10.78.1.0/24 n2", "multiple overlapping subnet configuration is not supported"},
		{"--subnet abc n2", "Invalid subnet abc : invalid CIDR address: abc"},
	} {
		r := d.run(t, "", "", append([]string{"network", "create"}, strings.Fields(tt.args)...)...)
		if r.code != 1 || r.stderr != tt.msg+"\n" {
			t.Errorf("network create %s: %+v, want %q", tt.args, r, tt.msg)
		}
	}
}
