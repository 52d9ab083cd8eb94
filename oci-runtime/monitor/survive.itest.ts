// A container started by a process that then exits keeps running under its monitor (conmon and berth-monitor).
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { makeEnv, type ItestEnv } from "../../conformance/lib/oci-itest-env.ts";
import { defaultSpec } from "../bundle-spec/default-spec.ts";
import { containerCgroupsPath } from "../cgroups/paths.ts";
import { waitForExit } from "./exit-file.ts";
import { recover } from "./conmon.ts";
import { isAlive, isConmonAlive } from "./pids.ts";
import { MONITORS } from "../../conformance/lib/monitors.ts";

let env: ItestEnv;
before(async () => { env = await makeEnv(); });
after(async () => { await env.cleanup(); });

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

for (const { name, binary } of MONITORS) test(`a container keeps running under ${name} after the process that started it exits`, async () => {
  const id = `survivor-${name}`;
  const spec = defaultSpec({ rootfs: env.rootfs });
  spec.process!.args = ["sleep", "100000"];
  spec.linux!.cgroupsPath = containerCgroupsPath(env.cgroupParent, id);
  env.track(id);
  const script = join(env.dir, "starter.ts");
  await writeFile(script, `
    import { createContainer } from ${JSON.stringify(here("./conmon.ts"))};
    import { RuncCli } from ${JSON.stringify(here("../runtime/runc-cli.ts"))};
    import { writeBundle } from ${JSON.stringify(here("../bundle-spec/bundle.ts"))};
    const [bundle, logPath, exitDir, socketDir, root, specJson] = process.argv.slice(2);
    const runtime = new RuncCli({ name: "runc", binary: "/usr/bin/runc", root });
    await writeBundle(bundle, JSON.parse(specJson));
    const r = await createContainer({ runtime, id: ${JSON.stringify(id)}, bundle, logPath, exitDir, socketDir, conmonBinary: ${JSON.stringify(binary)} });
    await runtime.start(${JSON.stringify(id)});
    console.log(JSON.stringify({ ...r, nodePid: process.pid }));
  `);
  const { stdout } = await promisify(execFile)(process.execPath, [script, env.bundle(id), env.logPath(id), env.exitDir, env.socketDir,
    env.runtime.root, JSON.stringify(spec)], { timeout: 60_000 });
  const started = JSON.parse(stdout) as { pid: number; conmonPid: number; nodePid: number };

  assert.equal(isAlive(started.nodePid), false, "the starter process has exited");
  assert.equal(await isConmonAlive(started.conmonPid), true);
  const st = await env.runtime.state(id);
  assert.equal(st.status, "running");
  assert.equal(st.pid, started.pid);
  assert.deepEqual(await recover({ id, bundle: env.bundle(id), exitDir: env.exitDir }), { status: "running", pid: started.pid, conmonPid: started.conmonPid });

  await env.runtime.kill(id, "KILL");
  assert.equal((await waitForExit(env.exitDir, id)).exitCode, 137);
  await env.runtime.delete(id);
});
