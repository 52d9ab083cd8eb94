// berthd command line:
//   berthd [--config FILE]                 run the daemon
//   berthd config default                  print the full default config
//   berthd config check [--config FILE]    validate a config file
import { nodeUtil } from "../oci-runtime/foundation/builtins.ts";
import { ConfigError, DEFAULT_CONFIG_PATH, defaultConfig, formatConfig, loadConfig } from "./config.ts";
import { BerthError } from "../oci-runtime/foundation/errdefs.ts";
import { log } from "../oci-runtime/foundation/log.ts";
import { startDaemon } from "./daemon.ts";
import { checkTrustConfig } from "../image-service/trust/trust.ts";

const usage = `usage:
  berthd [--config FILE]                 run the CRI daemon (default config ${DEFAULT_CONFIG_PATH})
  berthd config default                  print the default configuration
  berthd config check [--config FILE]    validate a configuration file
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = nodeUtil().parseArgs({
    args: argv,
    options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) { process.stdout.write(usage); return 0; }
  if (positionals[0] === "config") {
    if (positionals[1] === "default") { process.stdout.write(formatConfig(defaultConfig())); return 0; }
    if (positionals[1] === "check") {
      const cfg = loadConfig(values.config);
      const trust = await checkTrustConfig({ policy: cfg.image.signature_policy, policyDir: cfg.image.signature_policy_dir, registriesD: cfg.image.registries_d }, log);
      process.stdout.write(`${values.config ?? DEFAULT_CONFIG_PATH}: ok\n${trust}\n`);
      return 0;
    }
    process.stderr.write(usage);
    return 2;
  }
  if (positionals.length) { process.stderr.write(usage); return 2; }

  const config = loadConfig(values.config);
  // The handlers go in before the daemon starts: the kernel accepts on the socket from the moment
  // it is bound, before startDaemon has returned, and a SIGTERM then (a client that connected and
  // at once asked berthd to stop) used to find no handler and kill berthd, leaving its socket and
  // lock. Now it waits for the start to finish and stops cleanly; a second signal kills at once.
  let wake: (() => void) | undefined;
  const stopAsked = new Promise<void>((resolve) => { wake = resolve; });
  const onSignal = (sig: NodeJS.Signals) => {
    log.info("signal received", { signal: sig });
    // Either signal again now takes its default action (the process ends at once).
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    wake?.();
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const daemon = await startDaemon(config, values.config ?? DEFAULT_CONFIG_PATH);
  await stopAsked;
  await daemon.stop();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`berthd: ${err.message}\n`);
    else if (err instanceof BerthError) process.stderr.write(`berthd: ${err.message}\n`);
    else if (err instanceof TypeError && (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) process.stderr.write(`berthd: ${err.message}\n${usage}`);
    else log.error("berthd failed", { error: err, stack: (err as Error)?.stack });
    process.exit(1);
  },
);
