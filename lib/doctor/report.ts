import type { CheckRow } from './check.ts';
import type { DoctorReport } from './run-doctor.ts';

/** The doctor's report: a block per row for people, one JSON document for CI. */

const LABEL = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' } as const;

export function formatRow(row: CheckRow): string {
  const lines = [`${LABEL[row.status]}  ${row.id}: ${row.title} (${(row.durationMs / 1000).toFixed(1)} s)`, `      sent:     ${row.sent}`, `      observed: ${row.observed}`];
  if (row.advice !== undefined && row.status !== 'pass') lines.push(`      ${row.status === 'fail' ? 'to do' : 'why'}:    ${row.advice}`);
  return `${lines.join('\n')}\n`;
}

export function formatSummary(report: DoctorReport): string {
  const count = (status: CheckRow['status']) => report.rows.filter((row) => row.status === status).length;
  const failed = report.rows.filter((row) => row.status === 'fail').map((row) => row.id);
  return (
    `\n${report.registry} (${report.repository}): ${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped` +
    (failed.length > 0 ? `\nfailed: ${failed.join(', ')}\n` : report.interrupted ? '\ninterrupted: the remaining checks were skipped\n' : '\nevery check passed\n')
  );
}

export function toJson(report: DoctorReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
