import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import type { CloudFormationStackArtifact } from 'aws-cdk-lib/cx-api';
import { describe, expect, it } from 'vitest';
import { integApp, INTEG_STACK_NAME } from './integ.registry.ts';

/**
 * `npm run integ` deploys test/integ/integ.registry.ts into an AWS account; here, without credentials, its
 * synthesized templates and test-case manifest (stacks, assertion stack, hooks) are compared with the committed
 * snapshot, so a change to what the deployment test deploys is seen in review. Asset hashes (the bundled
 * function, the assertion provider) and the assertions' synth-time salt are masked: code changes do not count,
 * template changes do.
 *
 * After an intended change to the stack: `npx vitest run test/integ -u`, and commit the snapshot.
 */

const ASSET_HASH = /[0-9a-f]{64}/g;
/** integ-tests stamps each assertion with the synth time, so that it runs on every deploy. */
const SALT = /"salt": "\d+"/g;

function synthesized(): { templates: Record<string, unknown>; integ: unknown } {
  // Bundling skipped: the function's code is a placeholder asset, fast and offline.
  const { app } = integApp(new App({ context: { 'aws:cdk:bundling-stacks': [] } }));
  const assembly = app.synth();
  const templates = Object.fromEntries(
    assembly.artifacts
      .filter((artifact): artifact is CloudFormationStackArtifact => 'template' in artifact)
      .map((artifact) => [artifact.stackName, artifact.template as unknown]),
  );
  return { templates, integ: JSON.parse(readFileSync(join(assembly.directory, 'integ.json'), 'utf8')) };
}

describe('npm run integ (deployment test), synthesized offline', () => {
  const { templates, integ } = synthesized();

  it('deploys the registry stack with everything destroyed afterwards, and an assertion stack that calls GET /v2/', () => {
    const registry = JSON.stringify(templates[INTEG_STACK_NAME]);

    expect(Object.keys(templates).sort()).toEqual(['RegistryIntegTestDefaultTestDeployAssert3DD49DF7', INTEG_STACK_NAME]);
    expect(registry).not.toContain('"DeletionPolicy":"Retain"');
    expect(JSON.stringify(templates.RegistryIntegTestDefaultTestDeployAssert3DD49DF7)).toContain('HttpApiCall');
    expect(integ).toMatchObject({
      testCases: { 'RegistryIntegTest/DefaultTest': { stacks: [INTEG_STACK_NAME], hooks: { postDeploy: ['node integ-hooks.ts doctor'], preDestroy: ['node integ-hooks.ts empty-bucket'] } } },
    });
  });

  it('matches the committed snapshot (asset hashes masked)', async () => {
    const snapshot = JSON.stringify({ integ, templates }, null, 2).replace(ASSET_HASH, '<asset-hash>').replace(SALT, '"salt": "<synth-time>"');

    await expect(snapshot).toMatchFileSnapshot('./integ.registry.snapshot.json');
  });
});
