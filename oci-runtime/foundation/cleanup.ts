// A cleanup stack for multi-step creates: each acquired resource registers its
// undo; on failure they run in reverse order and every undo runs even if one fails.
import type { Logger } from "./log.ts";

export class Cleanup {
  private readonly undos: { what: string; fn: () => Promise<unknown> | unknown }[] = [];
  private readonly log: Logger;
  constructor(log: Logger) { this.log = log; }

  add(what: string, fn: () => Promise<unknown> | unknown): void {
    this.undos.push({ what, fn });
  }

  /** Runs every undo in reverse. Failures are logged, never thrown. */
  async unwind(): Promise<void> {
    while (this.undos.length) {
      const { what, fn } = this.undos.pop()!;
      try {
        await fn();
      } catch (err) {
        this.log.error("rollback step failed", { step: what, error: err });
      }
    }
  }

  /** Forget the undos (the create succeeded). */
  commit(): void { this.undos.length = 0; }
}
