#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { IntegManifest, TestCase } from 'aws-cdk-lib/cloud-assembly-schema';

/**
 * `npm run integ`: integ-runner's deploy workflow for test/integ/integ.registry.ts, run with this project's CDK CLI.
 * integ-runner itself cannot deploy this app: its newest release (2.197.10) embeds a toolkit that reads cloud
 * assembly schema 53 at most, and aws-cdk-lib 2.276 writes 55 ("AssemblyVersionMismatch"). The test stays an
 * integ-tests-alpha `IntegTest` (test cases, an assertion stack, hooks in integ.json); this script does what the
 * runner would, in its order, for every test case:
 *
 * ```
 * synth ─▶ deploy test stacks ─▶ deploy assertion stack (--no-rollback, outputs) ─▶ postDeploy hooks
 *       ─▶ assertion results ─▶ (always) preDestroy hooks ─▶ destroy all ─▶ postDestroy hooks
 * ```
 * Hooks run from test/integ, split on whitespace, as integ-runner runs them. Needs AWS credentials for a
 * CDK-bootstrapped account and region (`AWS_PROFILE`, `AWS_REGION`). Exit 0 only when every step passed.
 */

const HERE = import.meta.dirname;
const ROOT = join(HERE, '../..');
const OUT = join(HERE, 'cdk.out');
const CDK = join(ROOT, 'node_modules/.bin/cdk');

function step(title: string, command: string, args: string[], cwd = ROOT): void {
  process.stdout.write(`\n▶ ${title}: ${[command, ...args].join(' ')}\n`);
  const result = spawnSync(command, args, { cwd, stdio: 'inherit', env: process.env });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${title} failed (${result.status === null ? `signal ${result.signal}` : `exit ${result.status}`})`);
}

function hooks(testCase: TestCase, point: 'preDeploy' | 'postDeploy' | 'preDestroy' | 'postDestroy'): void {
  for (const hook of testCase.hooks?.[point] ?? []) {
    const [command, ...args] = hook.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
    if (command !== undefined) step(`${point} hook`, command, args, HERE);
  }
}

/** The assertion stack's outputs named AssertionResults…: `{status, message}` JSON per assertion. */
function assertionFailures(outputsFile: string, stackName: string): string[] {
  if (!existsSync(outputsFile)) return [`no assertion results in ${outputsFile}`];
  const outputs = (JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, string>>)[stackName] ?? {};
  const results = Object.entries(outputs).filter(([key]) => key.startsWith('AssertionResults'));
  if (results.length === 0) return [`stack ${stackName} reported no assertion results`];
  return results.flatMap(([key, value]) => {
    const result = JSON.parse(value) as { status: string; message?: string };
    return result.status === 'success' ? [] : [`${key}: ${result.status} ${result.message ?? ''}`];
  });
}

function runTestCase(name: string, testCase: TestCase): void {
  process.stdout.write(`\n=== ${name}: ${testCase.stacks.join(', ')}\n`);
  const app = ['--app', OUT];
  let failure: unknown;
  try {
    hooks(testCase, 'preDeploy');
    step('deploy', CDK, ['deploy', ...app, ...testCase.stacks, '--require-approval', 'never']);
    const outputsFile = join(OUT, 'assertion-results.json');
    if (testCase.assertionStack !== undefined) {
      step('deploy assertions', CDK, ['deploy', ...app, testCase.assertionStack, '--require-approval', 'never', '--no-rollback', '--outputs-file', outputsFile]);
    }
    hooks(testCase, 'postDeploy');
    if (testCase.assertionStackName !== undefined) {
      const failures = assertionFailures(outputsFile, testCase.assertionStackName);
      if (failures.length > 0) throw new Error(`assertions failed:\n  ${failures.join('\n  ')}`);
      process.stdout.write('assertions passed\n');
    }
  } catch (error) {
    failure = error;
  } finally {
    // Always cleaned up, as integ-runner does: a failed doctor must not leave a billed stack behind.
    try {
      hooks(testCase, 'preDestroy');
    } catch (error) {
      failure ??= error;
    }
    step('destroy', CDK, ['destroy', ...app, '--all', '--force']);
    hooks(testCase, 'postDestroy');
  }
  if (failure !== undefined) throw failure;
}

function main(): void {
  rmSync(OUT, { recursive: true, force: true });
  step('synth', CDK, ['synth', '--app', `node ${join(HERE, 'integ.registry.ts')}`, '--output', OUT, '--quiet']);
  const manifest = JSON.parse(readFileSync(join(OUT, 'integ.json'), 'utf8')) as IntegManifest;
  for (const [name, testCase] of Object.entries(manifest.testCases)) runTestCase(name, testCase);
  process.stdout.write('\nintegration test passed; every stack was destroyed\n');
}

try {
  main();
} catch (error) {
  process.stderr.write(`\nnpm run integ: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
