import { afterAll, describe, expect, it } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';
import { GATEWAY_413_BODY } from '../../lib/doctor/limit-checks.ts';
import { devAwsCommand, OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { runOk } from '../support/tools.ts';
import { startBrokenFront, zeroHeadContentLength } from './broken-front.ts';
import { doctor, notPassed } from './run-doctor.ts';

/**
 * The doctor against the emulated AWS deployment (the production handler behind the emulated HTTP API, DynamoDB
 * Local, strict s3rver): every row that applies to AWS must pass, none skipped but the token rows without auth.
 */

/** dev:aws starts DynamoDB Local (Java) and s3rver: on a loaded 2-core machine that has taken over the default 30 s. */
const DEV_AWS_READY_MS = 120_000;

const running: Array<DevAws | RegistryServer> = [];
const fronts: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(fronts.map((front) => front.close()));
  await Promise.all(running.map((dev) => dev.stop()));
});

async function devAws(auth: boolean): Promise<DevAws> {
  const dev = await startDevAws({ auth, logLevel: 'WARN' });
  running.push(dev);
  return dev;
}

describe('ocireg doctor against dev:aws', () => {
  it('passes every check, with S3 redirects, the multipart path and the gateway 413', async () => {
    // Prepare: `npm run dev:aws` as a user starts it
    const dev = await startRegistryServer({ command: devAwsCommand(), readyTimeoutMs: DEV_AWS_READY_MS });
    running.push(dev);
    // Act
    const { code, report, row } = await doctor(dev.url);
    // Assess
    expect(code, notPassed(report).join('\n')).toBe(0);
    expect(report.rows.filter((r) => r.status === 'skip').map((r) => r.id).sort()).toEqual(['token-get', 'token-post', 'token-refresh']);
    expect(row('chunk-max-length').observed).toMatch(/OCI-Chunk-Max-Length: 4194304/);
    expect(row('push-large-chunked').sent).toMatch(/5 PATCHes .*\(4 \+ 1 \+ 4 \+ 1 \+ 2 MiB\)/);
    expect(row('blob-get-range').observed).toMatch(/^307 → http:\/\/localhost:\d+\/.*\(presigned\); ranged GET 206/);
    expect(row('blob-read-large').observed).toMatch(/^307 → 200, 12582912 bytes/);
    expect(row('over-chunk-limit').observed).toMatch(/^413 with an OCI error body/);
    expect(row('over-gateway-limit').observed).toContain(`413 with the gateway's own body ${GATEWAY_413_BODY}`);
    expect(row('delete')).toMatchObject({ status: 'pass' });
  }, 300_000);

  it('passes with token auth, for a user administered with ocireg --table', async () => {
    const dev = await devAws(true);
    const admin = (...args: string[]) =>
      runOk(process.execPath, [OCIREG_CLI, ...args, '--table', dev.names.table], {
        env: {
          AWS_ENDPOINT_URL_DYNAMODB: dev.endpoints.dynamo,
          AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
          AWS_REGION: LOCAL_REGION,
        },
      });
    await admin('users', 'add', 'alice');
    await admin('grants', 'set', 'alice', 'ocireg-doctor/*', 'delete');
    const token = (await admin('tokens', 'create', 'alice')).stdout.trim();
    const { code, report, row } = await doctor(dev.url, '--creds', `alice:${token}`);
    expect(code, notPassed(report).join('\n')).toBe(0);
    expect(report.rows.filter((r) => r.status === 'skip')).toEqual([]);
    expect(row('base').observed).toMatch(/^401, WWW-Authenticate: Bearer realm=/);
  }, 300_000);

  it('passes the blob HEAD rows behind a front that zeroes HEAD Content-Length once blobHeadRedirect is on', async () => {
    // Prepare: `npm run dev:aws -- --blob-head-redirect` behind the broken front
    const dev = await startRegistryServer({ command: devAwsCommand(['--blob-head-redirect']), readyTimeoutMs: DEV_AWS_READY_MS });
    running.push(dev);
    const front = await startBrokenFront(dev.url, zeroHeadContentLength);
    fronts.push(front);
    // Act
    const { code, report, row } = await doctor(front.url);
    // Assess: blob sizes now come from S3 through the 307; manifest HEADs have no such switch and still fail
    expect(row('blob-head'), notPassed(report).join('\n')).toMatchObject({ status: 'pass' });
    expect(row('blob-head').observed).toMatch(/^307 → 200 \(via http:\/\/localhost:\d+\/.*\(presigned\)\), content-length: 65536/);
    expect(row('blob-head-large')).toMatchObject({ status: 'pass' });
    expect(report.rows.filter((r) => r.status === 'fail').map((r) => r.id)).toEqual(['manifest-head']);
    expect(code).toBe(1);
    // and without the front, the switch passes every row
    const direct = await doctor(dev.url);
    expect(direct.code, notPassed(direct.report).join('\n')).toBe(0);
    expect(direct.row('blob-head-large').observed).toMatch(/^307 → 200 .*content-length: 12582912/);
  }, 300_000);
});
