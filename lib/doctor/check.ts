import type { DoctorSession } from './doctor-session.ts';

/**
 * One row of the doctor's report: what was sent, what came back, and for a failure what to do. `skip` is for a
 * check that does not apply to this registry (no token auth, no body limit) or could not run because a check it
 * needs failed; only `fail` makes the doctor exit non-zero.
 */
export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckOutcome {
  status: CheckStatus;
  sent: string;
  observed: string;
  /** What to do about a failure (or why a check was skipped). */
  advice?: string;
}

export interface CheckRow extends CheckOutcome {
  id: string;
  title: string;
  /** Wall time of the check, all its requests included (a cold start or a slow gateway shows here). */
  durationMs: number;
}

export interface Check {
  /** Stable identifier, e.g. `blob-head`; docs/aws-assumptions.md refers to rows by it. */
  id: string;
  title: string;
  /** Checks whose failure makes this one pointless (it is then skipped, naming them). */
  needs?: string[];
  run(session: DoctorSession): Promise<CheckOutcome>;
}

/** A check as one row of the doctor's table: its id, title and needs, then what it does. */
export function check(row: Omit<Check, 'run'>, run: Check['run']): Check {
  return { ...row, run };
}

export const pass = (sent: string, observed: string): CheckOutcome => ({ status: 'pass', sent, observed });
export const fail = (sent: string, observed: string, advice: string): CheckOutcome => ({ status: 'fail', sent, observed, advice });
export const skip = (sent: string, observed: string, advice: string): CheckOutcome => ({ status: 'skip', sent, observed, advice });

/**
 * Collects problems found by one check: the first problem's advice wins, every problem is reported.
 * A check with no problem passes.
 */
export class Findings {
  readonly #problems: string[] = [];
  #advice: string | undefined;

  expect(ok: boolean, problem: string, advice: string): boolean {
    if (!ok) {
      this.#problems.push(problem);
      this.#advice ??= advice;
    }
    return ok;
  }

  outcome(sent: string, observed: string): CheckOutcome {
    if (this.#problems.length === 0) return pass(sent, observed);
    return fail(sent, `${observed}; ${this.#problems.join('; ')}`, this.#advice!);
  }
}
