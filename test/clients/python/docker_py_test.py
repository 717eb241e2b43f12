"""Debian's python3-docker (docker-py) against the daemon in DOCKER_HOST:
the common calls of the high-level client."""
import io
import os
import tarfile
import time
import unittest
import uuid

import docker


class DockerPy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = docker.from_env(version="auto", timeout=120)
        cls.tag = "tier-" + uuid.uuid4().hex[:8]

    def test_version_info_ping(self):
        self.assertTrue(self.client.ping())
        self.assertIn("ApiVersion", self.client.version())
        self.assertIn("Containers", self.client.info())

    def test_images(self):
        img = self.client.images.pull("busybox", tag="latest")
        self.assertIn("busybox:latest", img.tags)
        img.tag("tier/busybox", self.tag)
        names = [t for i in self.client.images.list() for t in i.tags]
        self.assertIn("tier/busybox:" + self.tag, names)
        self.client.images.remove("tier/busybox:" + self.tag)
        self.assertEqual(img.history()[0]["Id"][:7], "sha256:")

    def test_run_logs_exec_archive(self):
        c = self.client.containers.run("busybox:latest", ["sh", "-c", "echo started; sleep 300"], detach=True,
                                       labels={"tier": self.tag}, environment={"GREETING": "hi"})
        try:
            for _ in range(100):
                if b"started" in c.logs():
                    break
                time.sleep(0.1)
            self.assertIn(b"started", c.logs())
            c.reload()
            self.assertEqual(c.status, "running")
            code, out = c.exec_run(["sh", "-c", "echo $GREETING; echo oops >&2"], demux=True)
            self.assertEqual(code, 0)
            self.assertEqual(out, (b"hi\n", b"oops\n"))
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tf:
                data = b"put by docker-py\n"
                ti = tarfile.TarInfo("put.txt")
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            self.assertTrue(c.put_archive("/tmp", buf.getvalue()))
            stream, stat = c.get_archive("/tmp/put.txt")
            self.assertEqual(stat["name"], "put.txt")
            raw = b"".join(stream)
            with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
                self.assertEqual(tf.extractfile("put.txt").read(), b"put by docker-py\n")
            self.assertEqual(len(self.client.containers.list(filters={"label": "tier=" + self.tag})), 1)
            c.stop(timeout=1)
            c.reload()
            self.assertEqual(c.status, "exited")
        finally:
            c.remove(force=True)

    def test_run_output(self):
        out = self.client.containers.run("busybox:latest", ["echo", "hello from run"], remove=True)
        self.assertEqual(out, b"hello from run\n")

    def test_networks_volumes(self):
        net = self.client.networks.create("tier-net-" + self.tag)
        vol = self.client.volumes.create("tier-vol-" + self.tag)
        try:
            c = self.client.containers.run("busybox:latest", ["sh", "-c", "echo kept > /v/f"], detach=True,
                                           volumes={vol.name: {"bind": "/v", "mode": "rw"}}, network=net.name)
            c.wait()
            c.remove()
            out = self.client.containers.run("busybox:latest", ["cat", "/v/f"], remove=True,
                                             volumes={vol.name: {"bind": "/v", "mode": "ro"}})
            self.assertEqual(out, b"kept\n")
            net.reload()
            self.assertEqual(net.attrs["Driver"], "bridge")
        finally:
            vol.remove(force=True)
            net.remove()

    def test_df_and_events(self):
        df = self.client.df()
        self.assertGreater(df["LayersSize"], 0)
        self.assertTrue(any("busybox:latest" in (i["RepoTags"] or []) for i in df["Images"]))
        since = int(time.time()) - 1
        c = self.client.containers.create("busybox:latest", ["true"], labels={"tier-ev": self.tag})
        c.remove()
        events = self.client.events(since=since, until=int(time.time()) + 1, decode=True,
                                    filters={"label": "tier-ev=" + self.tag})
        actions = [e["Action"] for e in events]
        self.assertIn("create", actions)
        self.assertIn("destroy", actions)


if __name__ == "__main__":
    unittest.main(verbosity=2)
