import { parseArgs } from 'node:util';
import { parseCredentials } from '../client/docker-credentials.ts';
import { formatRow, formatSummary, toJson } from '../doctor/report.ts';
import { runDoctor } from '../doctor/run-doctor.ts';
import { UsageError, type Command } from './command.ts';

export const usage = `doctor     probe a live registry the way real clients use it, one row per check (sent, observed,
             pass/fail, what to do); pushes to ocireg-doctor/<random> and deletes it; exit 0 only if all pass
             ocireg doctor <registry-url> [--creds user:token] [--json]
             --creds <user:token>      a user who may push to and delete from ocireg-doctor/*
             --json                    one JSON report on stdout (for CI) instead of the rows
             --plain-http              HTTP even for a host other than localhost/127.0.0.1`;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * `https://id.execute-api.region.amazonaws.com`, `http://127.0.0.1:5000` or a bare `host[:port]`: a bare
 * loopback host is plain HTTP as docker treats it, anything else HTTPS unless `--plain-http`.
 */
export function registryBase(text: string, plainHttp: boolean): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `${plainHttp ? 'http' : 'https'}://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`not a registry URL: "${text}" (e.g. https://abc123.execute-api.eu-west-1.amazonaws.com or 127.0.0.1:5000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`the registry URL must be http(s), got "${text}"`);
  if (url.pathname !== '/' || url.search !== '') throw new UsageError(`the registry URL must have no path (the doctor adds /v2/…), got "${text}"`);
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text) && LOOPBACK.has(url.hostname)) url.protocol = 'http:';
  if (plainHttp) url.protocol = 'http:';
  return new URL(url.origin);
}

export const run: Command = async (args) => {
  const { values, positionals } = parseArgs({
    args,
    options: {
      creds: { type: 'string' },
      json: { type: 'boolean', default: false },
      'plain-http': { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError(`expected one <registry-url>, got ${positionals.length} argument(s)`);
  const base = registryBase(positionals[0]!, values['plain-http']);
  let credentials;
  try {
    credentials = values.creds === undefined ? undefined : parseCredentials(values.creds);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  // `ocireg doctor … | head` closes stdout early: keep going, so that the doctor still deletes what it pushed.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  // The first Ctrl-C (or SIGTERM) stops after the check under way and still deletes what was pushed; a second one
  // ends the process at once, leaving ocireg-doctor/<random> behind.
  const interrupt = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write(`ocireg doctor: ${signal}: removing what was pushed (again to quit at once)\n`);
    interrupt.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (!values.json) process.stdout.write(`ocireg doctor ${base.origin}${credentials ? ` as ${credentials.username}` : ' without credentials'}\n\n`);
  try {
    const report = await runDoctor({ base, credentials }, values.json ? undefined : (row) => process.stdout.write(formatRow(row)), interrupt.signal);
    process.stdout.write(values.json ? toJson(report) : formatSummary(report));
    if (report.interrupted) return 130;
    return report.ok ? 0 : 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
};
