import type { Check, CheckOutcome, CheckRow } from './check.ts';
import { baseCheck, tokenGetCheck, tokenPostCheck, tokenRefreshCheck } from './auth-checks.ts';
import { blobGetRangeCheck, blobHeadCheck64k, blobHeadLargeCheck, blobReadLargeCheck } from './blob-read-checks.ts';
import { cleanupCheck } from './cleanup-check.ts';
import { clockCheck } from './clock-check.ts';
import { DoctorSession, type DoctorTarget } from './doctor-session.ts';
import { overChunkLimitCheck, overGatewayLimitCheck } from './limit-checks.ts';
import { manifestHeadCheck, manifestPushCheck } from './manifest-checks.ts';
import { referrersCheck, tagListCheck } from './listing-checks.ts';
import { chunkMaxLengthCheck, largeChunkedCheck, monolithicPushCheck, streamedPatchCheck } from './upload-checks.ts';

/** Every check, in the order they run; `delete` last, whatever happened before. */
export const CHECKS: readonly Check[] = [
  baseCheck,
  clockCheck,
  tokenGetCheck,
  tokenPostCheck,
  tokenRefreshCheck,
  monolithicPushCheck,
  chunkMaxLengthCheck,
  streamedPatchCheck,
  largeChunkedCheck,
  manifestPushCheck,
  manifestHeadCheck,
  blobHeadCheck64k,
  blobHeadLargeCheck,
  blobGetRangeCheck,
  blobReadLargeCheck,
  overChunkLimitCheck,
  overGatewayLimitCheck,
  referrersCheck,
  tagListCheck,
  cleanupCheck,
];

export interface DoctorReport {
  registry: string;
  repository: string;
  /** True when no row failed. */
  ok: boolean;
  rows: CheckRow[];
  /** True when `signal` stopped the run early (the cleanup still ran). */
  interrupted: boolean;
}

/**
 * Runs the checks one after the other against a live registry. A check whose `needs` did not pass is skipped
 * with the reason; an exception (network error, refused credentials) fails that row only. Once `signal` aborts
 * (Ctrl-C), the check under way finishes, the others are skipped, and `delete` still removes what was pushed.
 */
export async function runDoctor(target: DoctorTarget, onRow: (row: CheckRow) => void = () => undefined, signal?: AbortSignal): Promise<DoctorReport> {
  const session = new DoctorSession(target);
  const rows: CheckRow[] = [];
  const status = new Map<string, CheckRow['status']>();
  try {
    for (const check of CHECKS) {
      const blocked = (check.needs ?? []).filter((id) => status.get(id) !== 'pass');
      const started = performance.now();
      let outcome: CheckOutcome;
      if (signal?.aborted && check !== cleanupCheck) {
        outcome = { status: 'skip', sent: 'nothing sent', observed: 'not run: interrupted', advice: 'run the doctor again' };
      } else if (blocked.length > 0) {
        outcome = { status: 'skip', sent: 'nothing sent', observed: `not run: ${blocked.join(', ')} did not pass`, advice: `fix ${blocked.join(', ')} first` };
      } else {
        try {
          outcome = await check.run(session);
        } catch (error) {
          outcome = { status: 'fail', sent: '(interrupted)', observed: (error as Error).message, advice: adviceFor(error) };
        }
      }
      const row: CheckRow = { id: check.id, title: check.title, ...outcome, durationMs: Math.round(performance.now() - started) };
      status.set(check.id, row.status);
      rows.push(row);
      onRow(row);
    }
  } finally {
    session.close();
  }
  const interrupted = signal?.aborted ?? false;
  return { registry: session.base.origin, repository: session.repository, ok: !interrupted && rows.every((row) => row.status !== 'fail'), rows, interrupted };
}

function adviceFor(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the registry cannot be reached: check the URL (the stack output RegistryUrl) and your network';
  if (code === 'EPROTO' || /wrong version number|SSL/i.test((error as Error).message)) return 'TLS failed: use https:// for AWS URLs, or --plain-http for a registry without TLS';
  if ((error as { status?: number }).status === 401) return 'the credentials were refused: check --creds (user:token, made with `ocireg tokens create`)';
  return 'check the function logs (or the `ocireg serve` log) around this time';
}
