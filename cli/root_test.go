package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlagAndArgumentErrors(t *testing.T) {
	d := newFakeDaemon(t)
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"images", "--foo"}, 125,
			"unknown flag: --foo\n\nUsage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth images --help' for more information\n"},
		{[]string{"tag", "a"}, 1,
			"berth: 'berth tag' requires 2 arguments\n\nUsage:  berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n\nRun 'berth tag --help' for more information\n"},
		{[]string{"rmi"}, 1,
			"berth: 'berth rmi' requires at least 1 argument\n\nUsage:  berth rmi [OPTIONS] IMAGE [IMAGE...]\n\nSee 'berth rmi --help' for more information\n"},
		{[]string{"version", "x"}, 1,
			"berth: 'berth version' accepts no arguments\n\nUsage:  berth version [OPTIONS]\n\nRun 'berth version --help' for more information\n"},
		{[]string{"foo"}, 1,
			"berth: unknown command: berth foo\n\nRun 'berth --help' for more information\n"},
		{[]string{"image", "foo"}, 1,
			"berth: unknown command: berth image foo\n\nUsage:  berth image\n\nRun 'berth image --help' for more information\n"},
		{[]string{"images", "-f", "nonsense"}, 125,
			"invalid argument \"nonsense\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\n\nUsage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth images --help' for more information\n"},
		{[]string{"-H", "a", "-H", "b", "info"}, 1,
			"Failed to initialize: unable to resolve berth endpoint: Specify only one -H\n"},
	}
	for _, tt := range tests {
		r := d.run(t, "", "", tt.args...)
		if r.code != tt.code || r.stderr != tt.stderr {
			t.Errorf("berth %s: code %d, stderr:\n%s\nwant code %d, stderr:\n%s", strings.Join(tt.args, " "), r.code, r.stderr, tt.code, tt.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	d := newFakeDaemon(t)
	r := d.run(t, "", "", "images", "--help")
	want := `Usage:  berth images [OPTIONS] [REPOSITORY[:TAG]]

List images

Aliases:
  berth image ls, berth image list, berth images

Options:
  -a, --all             Show all images (default hides intermediate images)
      --digests         Show digests
  -f, --filter filter   Filter output based on conditions provided
      --format string   Format output using a custom template:
                        'table':            Print output in table format
                        with column headers (default)
                        'table TEMPLATE':   Print output in table format
                        using the given Go template
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given
                        Go template.
                        Refer to https://docs.docker.com/go/formatting/
                        for more information about formatting output with
                        templates
      --no-trunc        Don't truncate output
  -q, --quiet           Only show image IDs
`
	checkOutput(t, "images --help", r.stdout, want)

	r = d.run(t, "", "", "image")
	if r.code != 0 || !strings.HasPrefix(r.stderr, "Usage:  berth image COMMAND\n\nManage images\n\nCommands:\n  build       Build an image from a Dockerfile\n  history     Show the history of an image\n") ||
		!strings.HasSuffix(r.stderr, "\nRun 'berth image COMMAND --help' for more information on a command.\n") {
		t.Errorf("image: %+v", r)
	}

	r = d.run(t, "", "", "--help")
	for _, s := range []string{
		"Usage:  berth [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n\nCommon Commands:\n" +
			"  run         Create and run a new container from an image\n  exec        Execute a command in a running container\n" +
			"  ps          List containers\n  build       Build an image from a Dockerfile\n  pull        Download an image from a registry\n  push        Upload an image to a registry\n  images      List images\n",
		"\nManagement Commands:\n  builder     Manage builds\n  container   Manage containers\n  image       Manage images\n",
		"\nCommands:\n  attach      Attach local standard input, output, and error streams to a running container\n",
		"  history     Show the history of an image\n",
		"\nGlobal Options:\n",
		"  -H, --host list          Daemon socket to connect to\n",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("--help lacks %q:\n%s", s, r.stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	d := newFakeDaemon(t)
	r := d.run(t, "", "", "version")
	if r.code != 0 {
		t.Fatalf("version: %+v", r)
	}
	if !strings.Contains(r.stdout, " API version:       1.41 (downgraded from 1.56)\n") {
		t.Errorf("client API version:\n%s", r.stdout)
	}
	wantServer := `Server:
 Engine:
  Version:          0.1.0
  API version:      1.41 (minimum version 1.40)
  Go version:       go1.26
  Git commit:       abc1234
  Built:            Thu May  7 21:09:36 2026
  OS/Arch:          linux/amd64
  Experimental:     false
 runc:
  Version:          1.1.5
  GitCommit:        v1.1.5-0-gf19387a
`
	if !strings.HasSuffix(r.stdout, "\n\n"+wantServer) {
		t.Errorf("version:\n%s\nwant it to end with:\n%s", r.stdout, wantServer)
	}
	r = d.run(t, "", "", "version", "--format", "{{.Server.Version}} {{.Server.GitCommit}} {{.Client.Context}}")
	checkOutput(t, "version --format", r.stdout, "0.1.0 abc1234 default\n")
}

func TestConnectionRefused(t *testing.T) {
	var out, errOut strings.Builder
	c := New(strings.NewReader(""), &out, &errOut)
	sock := filepath.Join(t.TempDir(), "nope.sock")
	c.Getenv = func(k string) string {
		if k == EnvHost {
			return "unix://" + sock
		}
		return ""
	}
	root := NewRootCommand(c)
	root.SetArgs([]string{"images"})
	err := root.Execute()
	if ExitCode(err) != 1 {
		t.Errorf("exit code %d", ExitCode(err))
	}
	want := "Cannot connect to the berth daemon at unix://" + sock + ". Is the berth daemon running?"
	if got := c.ErrorMessage(err); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

func TestLoginLogout(t *testing.T) {
	d := newFakeDaemon(t)
	d.users["printfchamp"] = "secret123"
	dir := t.TempDir()

	r := d.run(t, dir, "secret123\n", "login", "-u", "printfchamp", "--password-stdin", "127.0.0.1:5001")
	checkOutput(t, "login stdout", r.stdout, "Login Succeeded\n")
	cfgPath := filepath.Join(dir, "config.json")
	checkOutput(t, "login stderr", r.stderr, "\nWARNING! Your credentials are stored unencrypted in '"+cfgPath+"'.\n"+
		"Configure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n\n")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	checkOutput(t, "config.json", string(data), "{\n\t\"auths\": {\n\t\t\"127.0.0.1:5001\": {\n\t\t\t\"auth\": \"cHJpbnRmY2hhbXA6c2VjcmV0MTIz\"\n\t\t}\n\t}\n}")
	calls := d.calls()
	if calls[len(calls)-1] != "POST /auth" {
		t.Errorf("requests = %v", calls)
	}

	// Stored credentials are reused; nothing is written again.
	r = d.run(t, dir, "", "login", "http://127.0.0.1:5001/")
	checkOutput(t, "login again", r.stdout, "Login Succeeded\n")
	if !strings.HasPrefix(r.stderr, "Authenticating with existing credentials... [Username: printfchamp]\n") {
		t.Errorf("login again stderr: %q", r.stderr)
	}

	r = d.run(t, dir, "wrong", "login", "-u", "printfchamp", "--password-stdin", "127.0.0.1:5001")
	if r.code != 1 || r.stderr != "Error response from daemon: login attempt to http://127.0.0.1:5001/v2/ failed with status: 401 Unauthorized\n" {
		t.Errorf("bad password: %+v", r)
	}
	r = d.run(t, dir, "", "login", "-u", "x", "127.0.0.1:5001")
	if r.code != 1 || r.stderr != "Error: Cannot perform an interactive login from a non TTY device\n" {
		t.Errorf("non-tty prompt: %+v", r)
	}
	r = d.run(t, dir, "x", "login", "-p", "x", "--password-stdin", "127.0.0.1:5001")
	if r.code != 1 || r.stderr != "conflicting options: cannot specify both --password and --password-stdin\n" {
		t.Errorf("conflicting options: %+v", r)
	}

	r = d.run(t, dir, "", "logout", "127.0.0.1:5001")
	checkOutput(t, "logout", r.stdout, "Removing login credentials for 127.0.0.1:5001\n")
	data, _ = os.ReadFile(cfgPath)
	checkOutput(t, "config.json after logout", string(data), "{\n\t\"auths\": {}\n}")
	r = d.run(t, dir, "", "logout")
	checkOutput(t, "logout hub", r.stdout, "Removing login credentials for https://index.docker.io/v1/\n")
}

// TestConnectionRefusedSocket: a socket file nobody listens on (a berthd
// that died) gets berth's message too, though the client's error words it
// as Docker's without the cause.
func TestConnectionRefusedSocket(t *testing.T) {
	var out, errOut strings.Builder
	c := New(strings.NewReader(""), &out, &errOut)
	sock := filepath.Join(t.TempDir(), "dead.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	c.Getenv = func(k string) string {
		if k == EnvHost {
			return "unix://" + sock
		}
		return ""
	}
	root := NewRootCommand(c)
	root.SetArgs([]string{"images"})
	err = root.Execute()
	want := "Cannot connect to the berth daemon at unix://" + sock + ". Is the berth daemon running?"
	if got := c.ErrorMessage(err); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
