import assert from "node:assert/strict";
import { it } from "node:test";
import { parseNetDev } from "./net-dev.ts";

const SAMPLE = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0:12345678901   9000    2    3    0     0          0         0   54321     700    4    5    0     0       0          0
`;

it("parses interfaces, including counters glued to the colon", () => {
  const ifs = parseNetDev(SAMPLE);
  assert.deepEqual(ifs.map((i) => i.name), ["lo", "eth0"]);
  assert.deepEqual(ifs[1], {
    name: "eth0", rxBytes: 12345678901n, rxPackets: 9000n, rxErrors: 2n, rxDropped: 3n,
    txBytes: 54321n, txPackets: 700n, txErrors: 4n, txDropped: 5n,
  });
});
