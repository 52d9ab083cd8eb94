// A scripted StreamingBackend for the streaming specs (no containers).

import net from "node:net";
import type { Duplex, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { notFound } from "../../oci-runtime/foundation/errdefs.ts";
import type { StreamIO, StreamingBackend, TerminalSize } from "../../cri-server/streaming/backend.ts";
import type { AttachRequest, ExecRequest } from "../../cri-server/streaming/tokens.ts";

const write = (w: Writable | undefined, data: string | Buffer) => new Promise<void>((r) => (w ? w.write(data, () => r()) : r()));

async function drain(io: StreamIO): Promise<number> {
  let n = 0;
  if (io.stdin) for await (const c of io.stdin) n += (c as Buffer).length;
  return n;
}

export function fakeBackend(): StreamingBackend & { sizes: TerminalSize[] } {
  const sizes: TerminalSize[] = [];
  return {
    sizes,
    async exec(req: ExecRequest, io: StreamIO, signal: AbortSignal) {
      const [cmd, ...args] = req.cmd;
      switch (cmd) {
        case "echo": await write(io.stdout, args.join(" ") + "\n"); return { exitCode: 0 };
        case "stderr": await write(io.stderr, args.join(" ") + "\n"); return { exitCode: 0 };
        case "cat": if (io.stdin && io.stdout) await pipeline(io.stdin, io.stdout, { end: false }); return { exitCode: 0 };
        case "wc": await write(io.stdout, `${await drain(io)}\n`); return { exitCode: 0 };
        case "zeros": {
          const total = Number(args[0]);
          const chunk = Buffer.alloc(64 * 1024);
          for (let sent = 0; sent < total; sent += chunk.length) await write(io.stdout, chunk.subarray(0, Math.min(chunk.length, total - sent)));
          return { exitCode: 0 };
        }
        case "exit": return { exitCode: Number(args[0]) };
        case "missing": throw notFound(`container "${req.containerId}" not found`);
        case "resize": {
          for await (const s of io.resize ?? []) {
            sizes.push(s);
            await write(io.stdout, `${s.height} ${s.width}\n`);
            if (sizes.length >= Number(args[0])) break;
          }
          return { exitCode: 0 };
        }
        case "hang": await new Promise((r) => signal.addEventListener("abort", r, { once: true })); return { exitCode: 137 };
        default: throw new Error(`fake backend: unknown command ${cmd}`);
      }
    },
    async attach(_req: AttachRequest, io: StreamIO) {
      if (io.stdin && io.stdout) await pipeline(io.stdin, io.stdout, { end: false });
    },
    async portForward(_id: string, port: number, socket: Duplex, signal: AbortSignal) {
      const tcp = net.connect({ host: "127.0.0.1", port });
      await new Promise<void>((resolve, reject) => { tcp.once("connect", resolve); tcp.once("error", reject); });
      signal.addEventListener("abort", () => tcp.destroy(), { once: true });
      await Promise.all([pipeline(socket, tcp), pipeline(tcp, socket)]).catch(() => undefined);
    },
  };
}
