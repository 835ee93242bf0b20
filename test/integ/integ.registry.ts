#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { App, RemovalPolicy } from 'aws-cdk-lib';
import { ExpectedResult, IntegTest } from '@aws-cdk/integ-tests-alpha';
import { RegistryStack } from '../../lib/infra/registry-stack.ts';

/**
 * The deployment test (`npm run integ`, CDK's integ-runner convention): deploys a registry into the caller's
 * account, checks the anonymous challenge with an integ-tests assertion, runs `ocireg doctor` against it from the
 * postDeploy hook (test/integ/integ-hooks.ts), empties the bucket in the preDestroy hook and destroys everything.
 * Nothing is retained. Not part of `npm test`, which checks this app's synthesized templates against the
 * committed snapshot instead (test/integ/integ-snapshot.test.ts).
 */

/** Fixed: the hooks find the stack's outputs by this name. One run per account and region at a time. */
export const INTEG_STACK_NAME = 'ocireg-integ';

export function integApp(app = new App()): { app: App; stack: RegistryStack; test: IntegTest } {
  const stack = new RegistryStack(app, INTEG_STACK_NAME, {
    description: 'ocireg deployment test (npm run integ): deleted when the test ends',
    registry: { removalPolicy: RemovalPolicy.DESTROY },
  });
  const test = new IntegTest(app, 'RegistryIntegTest', {
    testCases: [stack],
    // The bundled function's hash changes with every code change; the templates around it are what is compared.
    diffAssets: false,
    // No deploy of the previous snapshot first: the test is about this code on a fresh stack.
    stackUpdateWorkflow: false,
    hooks: {
      postDeploy: ['node integ-hooks.ts doctor'],
      preDestroy: ['node integ-hooks.ts empty-bucket'],
    },
  });
  // The first request of every client: anonymous, it must get the Bearer challenge through the gateway.
  test.assertions.httpApiCall(`${stack.registry.url}/v2/`).expect(ExpectedResult.objectLike({ status: 401 }));
  return { app, stack, test };
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.filename === realpathSync(process.argv[1]);
if (invokedDirectly) integApp().app.synth();
