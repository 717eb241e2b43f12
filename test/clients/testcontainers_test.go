package clients

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	tc "github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The testcontainers-go scenarios run in this process, with Ryuk (the
// stand-in built from test/clients/ryuk) reaping what they leave.

func tcRun(t *testing.T, img string, opts ...tc.ContainerCustomizer) *tc.DockerContainer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := tc.Run(ctx, img, opts...)
	tc.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("testcontainers Run %s: %v", img, err)
	}
	return c
}

func TestTestcontainersWaitLog(t *testing.T) {
	requireEnv(t)
	c := tcRun(t, "busybox:latest", tc.WithCmd("sh", "-c", "echo booting; sleep 1; echo ready to serve; sleep 300"),
		tc.WithWaitStrategy(wait.ForLog("ready to serve").WithStartupTimeout(60*time.Second)))
	rc, err := c.Logs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	if !strings.Contains(string(b), "booting") {
		t.Errorf("logs %q", b)
	}
}

func TestTestcontainersWaitHTTPAndPort(t *testing.T) {
	requireEnv(t)
	web := tcRun(t, "nginx:alpine", tc.WithExposedPorts("80/tcp"),
		tc.WithWaitStrategy(wait.ForHTTP("/").WithPort("80/tcp").WithStartupTimeout(60*time.Second)))
	ep, err := web.PortEndpoint(t.Context(), "80/tcp", "http")
	if err != nil {
		t.Fatal(err)
	}
	if body, err := httpGet(ep + "/"); err != nil || !strings.Contains(body, "Welcome to nginx!") {
		t.Errorf("GET %s: %v %q", ep, err, body)
	}
	// ForListeningPort checks inside the container too (an exec).
	srv := tcRun(t, "busybox:latest", tc.WithExposedPorts("8080/tcp"), tc.WithCmd("httpd", "-f", "-p", "8080", "-h", "/etc"),
		tc.WithWaitStrategy(wait.ForListeningPort("8080/tcp").WithStartupTimeout(60*time.Second)))
	ep, err = srv.PortEndpoint(t.Context(), "8080/tcp", "http")
	if err != nil {
		t.Fatal(err)
	}
	if body, err := httpGet(ep + "/passwd"); err != nil || !strings.Contains(body, "root:") {
		t.Errorf("GET %s/passwd: %v %q", ep, err, body)
	}
	// Exec with its output.
	code, out, err := srv.Exec(t.Context(), []string{"sh", "-c", "echo out; echo err >&2; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out)
	if code != 3 || !strings.Contains(string(b), "out") || !strings.Contains(string(b), "err") {
		t.Errorf("exec: code %d output %q", code, b)
	}
}

func TestTestcontainersWaitHealth(t *testing.T) {
	requireEnv(t)
	slow(t)
	tcRun(t, "busybox:latest", tc.WithCmd("sh", "-c", "sleep 2; touch /tmp/healthy; sleep 300"),
		tc.WithConfigModifier(func(cfg *container.Config) {
			cfg.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "test", "-e", "/tmp/healthy"}, Interval: time.Second, Retries: 30}
		}),
		tc.WithWaitStrategy(wait.ForHealthCheck().WithStartupTimeout(60*time.Second)))
}

func TestTestcontainersFiles(t *testing.T) {
	requireEnv(t)
	// testcontainers-go gzips every copy into a container (issue 11 item 2).
	c := tcRun(t, "busybox:latest", tc.WithCmd("sleep", "300"),
		tc.WithFiles(tc.ContainerFile{Reader: strings.NewReader("from the test\n"), ContainerFilePath: "/etc/tc-config.txt", FileMode: 0o640}))
	if err := c.CopyToContainer(t.Context(), []byte("copied later\n"), "/tmp/later.txt", 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/etc/tc-config.txt": "from the test\n", "/tmp/later.txt": "copied later\n"} {
		rc, err := c.CopyFileFromContainer(t.Context(), path)
		if err != nil {
			t.Fatalf("copy %s out: %v", path, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != want {
			t.Errorf("%s: %q, want %q", path, b, want)
		}
	}
}

func TestTestcontainersNetwork(t *testing.T) {
	requireEnv(t)
	ctx := t.Context()
	nw, err := network.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nw.Remove(context.Background()) })
	tcRun(t, "busybox:latest", tc.WithCmd("httpd", "-f", "-p", "80", "-h", "/etc"), network.WithNetwork([]string{"backend"}, nw),
		tc.WithWaitStrategy(wait.ForExec([]string{"sh", "-c", "wget -qO- http://127.0.0.1/hostname"}).WithStartupTimeout(60*time.Second)))
	client := tcRun(t, "busybox:latest", tc.WithCmd("sleep", "300"), network.WithNetwork(nil, nw))
	code, out, err := client.Exec(ctx, []string{"wget", "-qO-", "http://backend/passwd"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out)
	if code != 0 || !strings.Contains(string(b), "root:") {
		t.Errorf("from a container on the network, http://backend/passwd: code %d %q", code, b)
	}
}

// TestTestcontainersRyuk: a process that leaves a container behind; Ryuk
// removes it once the process (and its connection) is gone.
func TestTestcontainersRyuk(t *testing.T) {
	requireEnv(t)
	if os.Getenv("BERTH_CLIENTS_RYUK_CHILD") != "" {
		// The child: start a container and exit without removing it.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c, err := tc.Run(ctx, "busybox:latest", tc.WithCmd("sleep", "600"), tc.WithLabels(map[string]string{"berth.test": "ryuk"}))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("LEFT", c.GetContainerID())
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTestcontainersRyuk$", "-test.v")
	cmd.Env = append(os.Environ(), "BERTH_CLIENTS_RYUK_CHILD=1", "TESTCONTAINERS_RYUK_RECONNECTION_TIMEOUT=2s")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child failed: %v\n%s", err, out)
	}
	var id string
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(l, "LEFT "); ok {
			id = strings.TrimSpace(rest)
		}
	}
	if id == "" {
		t.Fatalf("the child left no container:\n%s", out)
	}
	a := env.d.api()
	if !poll(60*time.Second, func() bool {
		r, err := a.do(context.Background(), "GET", "/containers/"+id+"/json", nil)
		return err == nil && r.status == 404
	}) {
		t.Errorf("Ryuk did not remove the container %s the child left", id)
	}
}
