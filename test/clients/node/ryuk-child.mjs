// Starts a container with testcontainers-node and exits without stopping
// it: Ryuk must remove it once this process's connection is gone.
import { GenericContainer } from "testcontainers";

const c = await new GenericContainer("busybox:latest").withCommand(["sleep", "600"])
  .withLabels({ "berth.test": "ryuk-node" }).start();
console.log("LEFT " + c.getId());
process.exit(0);
