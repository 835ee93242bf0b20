import type { CheckRow } from '../../lib/doctor/check.ts';
import type { DoctorReport } from '../../lib/doctor/run-doctor.ts';
import { OCIREG_CLI } from '../support/registry-server.ts';
import { runTool } from '../support/tools.ts';

/** `ocireg doctor <url> --json …`, as CI runs it: the exit code and the parsed report. */
export async function doctor(url: string, ...args: string[]): Promise<{ code: number; report: DoctorReport; row(id: string): CheckRow; stderr: string }> {
  const result = await runTool(process.execPath, [OCIREG_CLI, 'doctor', url, '--json', ...args], { timeoutMs: 240_000 });
  let report: DoctorReport;
  try {
    report = JSON.parse(result.stdout) as DoctorReport;
  } catch {
    throw new Error(`ocireg doctor printed no JSON report (exit ${result.code}): stdout ${result.stdout.slice(0, 2000)} stderr ${result.stderr}`);
  }
  return {
    code: result.code,
    report,
    stderr: result.stderr,
    row(id) {
      const found = report.rows.find((row) => row.id === id);
      if (!found) throw new Error(`no row ${id} in ${report.rows.map((row) => row.id).join(', ')}`);
      return found;
    },
  };
}

/** Rows that did not pass, as `id: status observed` lines, for assertion messages. */
export function notPassed(report: DoctorReport): string[] {
  return report.rows.filter((row) => row.status !== 'pass').map((row) => `${row.id}: ${row.status} ${row.observed} ${row.advice ?? ''}`);
}
