// Maps a CRI runtime handler name to its OciRuntime.
import { binaryStatus } from "../foundation/executable.ts";
import { failedPrecondition, invalidArgument } from "../foundation/errdefs.ts";
import type { OciRuntime } from "./oci-runtime.ts";
import { RuncCli } from "./runc-cli.ts";

export interface HandlerConfig {
  binary: string;
  root: string;
  logDir?: string;
  extraGlobalArgs?: string[];
  /** Limit for create/start/update in ms (see RuncCli). */
  timeoutMs?: number;
  /** berth-start, when installed (see RuncCli). */
  startHelper?: string;
}

export class RuntimeHandlers {
  readonly #byName = new Map<string, OciRuntime>();
  readonly defaultHandler: string;

  /** `defaultHandler` answers for the empty handler name ("" in CRI means the default). */
  constructor(runtimes: OciRuntime[], defaultHandler: string) {
    for (const rt of runtimes) this.#byName.set(rt.name, rt);
    if (!this.#byName.has(defaultHandler)) throw invalidArgument(`default runtime handler "${defaultHandler}" is not configured`);
    this.defaultHandler = defaultHandler;
  }

  /** Builds runc-compatible CLI runtimes from `{ [name]: { binary, root } }`. */
  static fromConfig(config: Record<string, HandlerConfig>, defaultHandler: string): RuntimeHandlers {
    const runtimes = Object.entries(config).map(([name, c]) => new RuncCli({ name, ...c }));
    return new RuntimeHandlers(runtimes, defaultHandler);
  }

  /** The runtime for `name` ("" = default); an unknown handler is INVALID_ARGUMENT naming it. */
  get(name: string | undefined): OciRuntime {
    const key = name ? name : this.defaultHandler;
    const rt = this.#byName.get(key);
    if (!rt) throw invalidArgument(`unknown runtime handler "${key}"`);
    return rt;
  }

  /**
   * The runtime for `name`, checked to be runnable: a handler whose binary is missing is
   * FAILED_PRECONDITION naming the handler and the binary (checked before anything is created).
   */
  usable(name: string | undefined): OciRuntime {
    const rt = this.get(name);
    const st = binaryStatus(rt.binary);
    if (!st.ok) throw failedPrecondition(`runtime handler "${rt.name}": its binary ${rt.binary} ${st.problem}`);
    return rt;
  }

  names(): string[] {
    return [...this.#byName.keys()];
  }

  all(): OciRuntime[] {
    return [...this.#byName.values()];
  }
}
