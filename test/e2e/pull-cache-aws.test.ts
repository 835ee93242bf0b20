import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import { DynamoDbCacheRuleStore } from '../../lib/storage/dynamodb/dynamodb-cache-rule-store.ts';
import { addRandomLayer, blobPath, buildRandomImage, MiB, sameFileBytes, type LayoutImage } from '../support/images.ts';
import { distributionRegistry, type DistributionRegistry } from '../support/distribution-registry.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { describeFailure, requireTools, runTool } from '../support/tools.ts';

/**
 * The pull-through cache on the emulated AWS path (`dev:aws`: the production handler behind the emulated HTTP API,
 * DynamoDB Local, the strict s3rver, the local Lambda running the copy function) with CNCF Distribution
 * (`docker-registry`) on loopback as the upstream. The copy-in-request limit is set to 2 MiB, so the image's 3 MiB
 * layer takes the large-blob path (307 to the upstream, copy function invoked asynchronously) and its 1 MiB layer
 * the in-request copy. Then the upstream stops and the image is pulled again from S3 alone.
 */

const dirs = tempDirs('ocireg-pull-cache-aws-');
let work: string;
let upstream: DistributionRegistry;
let dev: DevAws;
let image: LayoutImage;

const skopeo = (args: string[]) => runTool('skopeo', args, { timeoutMs: 180_000 });

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker-registry');
  work = await dirs.make();
  upstream = await distributionRegistry(join(work, 'upstream'));
  await upstream.start();
  const base = await buildRandomImage({ layout: join(work, 'src'), tag: 'base', randomBytes: 3 * MiB });
  image = await addRandomLayer(join(work, 'src'), 'base', 1 * MiB, 'app');
  expect(base.blobs.length).toBeGreaterThan(0);
  const push = await skopeo(['copy', '--dest-tls-verify=false', image.ref, `docker://${upstream.host}/library/app:1`]);
  expect(push.code, describeFailure(push)).toBe(0);

  dev = await startDevAws({ logLevel: 'SILENT', cacheCopyInRequestMaxBytes: 2 * MiB });
  await new DynamoDbCacheRuleStore({ dynamo: dev.local.dynamo, table: dev.names.table }).put({ prefix: 'hub', upstream: upstream.url });
}, 240_000);

afterAll(async () => {
  await dev?.stop();
  await upstream?.stop();
  await dirs.cleanUp();
});

describe('pull-through cache on dev:aws with a docker-registry upstream', () => {
  it('serves the first pull (large layer redirected to the upstream, small one copied in the request) and copies the large layer in the background once', async () => {
    // Act
    const back = join(work, 'first');
    const pull = await skopeo(['copy', '--src-tls-verify=false', `docker://${dev.url.replace('http://', '')}/hub/library/app:1`, `oci:${back}:1`]);
    await dev.lambda.idle();

    // Assess
    expect(pull.code, describeFailure(pull)).toBe(0);
    for (const blob of image.blobs) expect(await sameFileBytes(blobPath(back, blob.digest), blobPath(image.layout, blob.digest)), blob.digest).toBe(true);
    const large = image.manifest.layers.filter((layer) => layer.size > 2 * MiB).map((layer) => layer.digest);
    expect(large).toHaveLength(1);
    expect(dev.lambda.invocations.map((invocation) => invocation.payload)).toEqual([{ name: 'hub/library/app', digest: large[0] }]);
  });

  it('serves the image again with the upstream stopped: every blob from S3, the manifest from the table', async () => {
    // Prepare
    await upstream.stop();

    // Act
    const back = join(work, 'offline');
    const pull = await skopeo(['copy', '--src-tls-verify=false', `docker://${dev.url.replace('http://', '')}/hub/library/app:1`, `oci:${back}:1`]);
    const redirects = await Promise.all(
      image.manifest.layers.map(async (layer) => (await fetch(`${dev.url}/v2/hub/library/app/blobs/${layer.digest}`, { redirect: 'manual' })).headers.get('location') ?? ''),
    );

    // Assess
    expect(pull.code, describeFailure(pull)).toBe(0);
    for (const blob of image.blobs) expect(await sameFileBytes(blobPath(back, blob.digest), blobPath(image.layout, blob.digest)), blob.digest).toBe(true);
    for (const location of redirects) expect(new URL(location).port).toBe(new URL(dev.endpoints.s3).port);
  });
});
