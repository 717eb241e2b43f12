// testcontainers-node against the daemon in DOCKER_HOST, with Ryuk on:
// wait strategies (log, HTTP, port, health), networks, file copies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GenericContainer, Network, Wait } from "testcontainers";

const onBerth = process.env.BERTH_CLIENTS_TARGET === "berth";

test("wait for a log line", async () => {
  const c = await new GenericContainer("busybox:latest")
    .withCommand(["sh", "-c", "echo booting; sleep 1; echo ready to serve; sleep 300"])
    .withWaitStrategy(Wait.forLogMessage("ready to serve"))
    .start();
  await c.stop();
});

test("wait for HTTP, then fetch through the mapped port", async () => {
  const c = await new GenericContainer("nginx:alpine").withExposedPorts(80)
    .withWaitStrategy(Wait.forHttp("/", 80)).start();
  try {
    const res = await fetch(`http://${c.getHost()}:${c.getMappedPort(80)}/`);
    assert.match(await res.text(), /Welcome to nginx!/);
  } finally {
    await c.stop();
  }
});

test("wait for a listening port; exec", async () => {
  const c = await new GenericContainer("busybox:latest").withExposedPorts(8080)
    .withCommand(["httpd", "-f", "-p", "8080", "-h", "/etc"])
    .withWaitStrategy(Wait.forListeningPorts()).start();
  try {
    const { output, exitCode } = await c.exec(["sh", "-c", "echo hi-from-exec"]);
    assert.equal(exitCode, 0);
    assert.match(output, /hi-from-exec/);
  } finally {
    await c.stop();
  }
});

test("wait for a healthcheck", async () => {
  const c = await new GenericContainer("busybox:latest")
    .withCommand(["sh", "-c", "sleep 2; touch /tmp/healthy; sleep 300"])
    .withHealthCheck({ test: ["CMD", "test", "-e", "/tmp/healthy"], interval: 1000, retries: 30 })
    .withWaitStrategy(Wait.forHealthCheck()).start();
  await c.stop();
});

test("file copies in and out", async () => {
  const c = await new GenericContainer("busybox:latest").withCommand(["sleep", "300"])
    .withCopyContentToContainer([{ content: "from the test\n", target: "/etc/tc-config.txt" }]).start();
  try {
    const { output } = await c.exec(["cat", "/etc/tc-config.txt"]);
    assert.equal(output, "from the test\n");
    const stream = await c.copyArchiveFromContainer("/etc/tc-config.txt");
    let n = 0;
    for await (const chunk of stream) n += chunk.length;
    assert.ok(n >= 512, "a tar came back");
  } finally {
    await c.stop();
  }
});

test("a network: one container reaches another by its alias", async () => {
  const net = await new Network().start();
  const srv = await new GenericContainer("busybox:latest").withNetwork(net).withNetworkAliases("backend")
    .withCommand(["httpd", "-f", "-p", "80", "-h", "/etc"]).start();
  const cli = await new GenericContainer("busybox:latest").withNetwork(net).withCommand(["sleep", "300"]).start();
  try {
    const { output, exitCode } = await cli.exec(["wget", "-qO-", "http://backend/passwd"]);
    assert.equal(exitCode, 0, output);
    assert.match(output, /root:/);
  } finally {
    await cli.stop();
    await srv.stop();
    await net.stop();
  }
});
