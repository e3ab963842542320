// The PeerJS server for meshcast-bench: `node server.mjs PORT`, on 127.0.0.1
// only. Its defaults stay, except the one limit a load test would hit first:
// `concurrent_limit` (5000 clients per server by default) is raised so the
// 10k idle-connection test measures memory, not the refusal.
import { PeerServer } from "peer";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node server.mjs PORT");
  process.exit(2);
}
PeerServer({ host: "127.0.0.1", port, concurrent_limit: 1_000_000 }, () => {
  console.log(`PeerJS server on 127.0.0.1:${port}`);
});
