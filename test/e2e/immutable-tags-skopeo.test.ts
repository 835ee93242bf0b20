import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRandomImage } from '../support/images.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { requireTools, runOk, runTool } from '../support/tools.ts';

/** An immutable tag refused to a real client (skopeo): the message it prints names the rule. */

let work: string;
let server: RegistryServer;

beforeAll(async () => {
  await requireTools('skopeo', 'umoci');
  work = await mkdtemp(join(tmpdir(), 'ocireg-immutable-'));
  server = await startRegistryServer();
  await runOk(process.execPath, [OCIREG_CLI, 'policy', 'set', 'team/*', '--immutable', '--mutable-tags', 'latest', '--data-dir', server.dataDir]);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('immutable tags with skopeo', () => {
  it('refuses to move v1 with the rule in its message, and accepts the same image again and a moved latest', async () => {
    // Prepare: two different images
    const layout = join(work, 'layout');
    await buildRandomImage({ layout, tag: 'a', randomBytes: 4096 });
    await buildRandomImage({ layout, tag: 'b', randomBytes: 4096 });
    const copy = (tag: string, to: string) => runTool('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${server.host}/team/app:${to}`]);
    // Act
    expect((await copy('a', 'v1')).code).toBe(0);
    const moved = await copy('b', 'v1');
    // Assess
    expect(moved.code).not.toBe(0);
    expect(moved.stderr).toContain('tag v1 is immutable in team/app (policy team/*: tags are immutable except latest)');
    expect((await copy('a', 'v1')).code).toBe(0);
    expect((await copy('a', 'latest')).code).toBe(0);
    expect((await copy('b', 'latest')).code).toBe(0);
  });
});
