// dockerode against the daemon in DOCKER_HOST (berthd or dockerd): attach
// with stdin, exec with demultiplexed output, events, df.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import Docker from "dockerode";

const docker = new Docker({ socketPath: process.env.DOCKER_HOST.replace(/^unix:\/\//, "") });

function collect(stream) {
  return new Promise((resolve, reject) => {
    let out = "";
    stream.on("data", (d) => (out += d.toString()));
    stream.on("end", () => resolve(out));
    stream.on("error", reject);
  });
}

test("attach with stdin: the container reads only what the client writes", async () => {
  const c = await docker.createContainer({
    Image: "busybox:latest", Cmd: ["sh", "-c", 'read line; echo "got:$line"'],
    OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true,
  });
  try {
    // dockerode sends these options as the hijacked request's JSON body.
    const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    const stdout = new PassThrough(), stderr = new PassThrough();
    c.modem.demuxStream(stream, stdout, stderr);
    const got = collect(stdout);
    await c.start();
    stream.write("hello\n");
    stream.on("end", () => { stdout.end(); stderr.end(); });
    await c.wait();
    stdout.end();
    assert.equal((await got).trim(), "got:hello");
  } finally {
    await c.remove({ force: true });
  }
});

test("exec: stdout and stderr demultiplexed, exit code", async () => {
  const c = await docker.createContainer({ Image: "busybox:latest", Cmd: ["sleep", "300"] });
  try {
    await c.start();
    const ex = await c.exec({ Cmd: ["sh", "-c", "echo to-out; echo to-err >&2; exit 4"], AttachStdout: true, AttachStderr: true });
    const stream = await ex.start({});
    const stdout = new PassThrough(), stderr = new PassThrough();
    docker.modem.demuxStream(stream, stdout, stderr);
    const [o, e] = [collect(stdout), collect(stderr)];
    await new Promise((r) => stream.on("end", r));
    stdout.end(); stderr.end();
    assert.equal((await o).trim(), "to-out");
    assert.equal((await e).trim(), "to-err");
    const info = await ex.inspect();
    assert.equal(info.ExitCode, 4);
  } finally {
    await c.remove({ force: true });
  }
});

test("events: create, start, die, destroy of a container, filtered by label", async () => {
  const label = "berth.tier=" + Math.random().toString(16).slice(2);
  const since = Math.floor(Date.now() / 1000) - 1;
  const c = await docker.createContainer({ Image: "busybox:latest", Cmd: ["true"], Labels: { "berth.tier": label.split("=")[1] } });
  await c.start();
  await c.wait();
  await c.remove();
  const until = Math.floor(Date.now() / 1000) + 1;
  const stream = await docker.getEvents({ since, until, filters: { label: [label], type: ["container"] } });
  const text = await collect(stream);
  const actions = text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l).Action);
  for (const a of ["create", "start", "die", "destroy"]) assert.ok(actions.includes(a), `no ${a} in ${actions}`);
});

test("df: images, containers, volumes, build cache", async () => {
  const vol = await docker.createVolume({ Name: "tier-df-" + Math.random().toString(16).slice(2) });
  try {
    const df = await docker.df();
    assert.ok(df.LayersSize > 0, "LayersSize");
    const bb = df.Images.find((i) => (i.RepoTags || []).includes("busybox:latest"));
    assert.ok(bb && bb.Size > 0 && bb.SharedSize >= 0 && bb.Containers >= 0, JSON.stringify(bb));
    assert.ok(Array.isArray(df.Containers), "Containers");
    const v = df.Volumes.find((x) => x.Name === vol.name);
    assert.ok(v && v.UsageData && v.UsageData.RefCount === 0, JSON.stringify(v));
    assert.ok(df.BuildCache === null || Array.isArray(df.BuildCache), "BuildCache");
  } finally {
    await docker.getVolume(vol.name).remove();
  }
});
