package clients

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerode runs node/dockerode.test.mjs (node's test runner).
func TestDockerode(t *testing.T) {
	requireEnv(t)
	nodeTest(t, "dockerode.test.mjs")
}

// TestTestcontainersNode runs node/testcontainers.test.mjs.
func TestTestcontainersNode(t *testing.T) {
	requireEnv(t)
	slow(t)
	nodeTest(t, "testcontainers.test.mjs")
}

func nodeTest(t *testing.T, file string) {
	t.Helper()
	dir := filepath.Join(env.repoRoot, "test", "clients", "node")
	tool(t, filepath.Join(dir, "node_modules", "testcontainers"), "testcontainers-node (npm ci)")
	r := runIn(t, dir, clientEnv(t), 10*time.Minute, "node", "--test", "--test-reporter=spec", file)
	if r.code != 0 {
		t.Errorf("node --test %s: exit %d", file, r.code)
	}
}

// TestTestcontainersNodeRyuk: a node process leaves a container behind;
// Ryuk removes it once the process is gone.
func TestTestcontainersNodeRyuk(t *testing.T) {
	requireEnv(t)
	slow(t)
	dir := filepath.Join(env.repoRoot, "test", "clients", "node")
	tool(t, filepath.Join(dir, "node_modules", "testcontainers"), "testcontainers-node (npm ci)")
	r := runIn(t, dir, clientEnv(t, "TESTCONTAINERS_RYUK_RECONNECTION_TIMEOUT=2s"), 3*time.Minute, "node", "ryuk-child.mjs")
	var id string
	for _, l := range strings.Split(r.out, "\n") {
		if rest, ok := strings.CutPrefix(l, "LEFT "); ok {
			id = strings.TrimSpace(rest)
		}
	}
	if r.code != 0 || id == "" {
		t.Fatalf("the node child left no container (exit %d)", r.code)
	}
	a := env.d.api()
	if !poll(60*time.Second, func() bool {
		r, err := a.do(context.Background(), "GET", "/containers/"+id+"/json", nil)
		return err == nil && r.status == 404
	}) {
		t.Errorf("Ryuk did not remove the container %s the node child left", id)
	}
}

// TestDockerPy runs python/docker_py_test.py with Debian's python3-docker.
func TestDockerPy(t *testing.T) {
	requireEnv(t)
	py := tool(t, "/usr/bin/python3", "Debian's python3")
	dir := filepath.Join(env.repoRoot, "test", "clients", "python")
	r := runIn(t, dir, clientEnv(t), 5*time.Minute, py, "docker_py_test.py")
	if r.code != 0 {
		t.Errorf("docker-py: exit %d", r.code)
	}
}
