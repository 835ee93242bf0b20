#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { RegistryStack } from '../lib/infra/registry-stack.ts';

/**
 * The CDK app (cdk.json "app"): wiring only. Context: `stackName` (default `ocireg`), and `domainName` with
 * `certificateArn` for a custom domain. Account and region come from the CLI's environment when it has one;
 * synth works without (no credentials, no lookups).
 */
const app = new App();
const context = (key: string) => app.node.tryGetContext(key) as string | undefined;
const account = process.env.CDK_DEFAULT_ACCOUNT;
const region = process.env.CDK_DEFAULT_REGION;
const domainName = context('domainName');
const certificateArn = context('certificateArn');
new RegistryStack(app, context('stackName') ?? 'ocireg', {
  ...(account && region ? { env: { account, region } } : {}),
  description: 'ocireg: serverless OCI registry (API Gateway HTTP API, Lambda, S3, DynamoDB)',
  ...(domainName !== undefined ? { registry: { domainName } } : {}),
  ...(certificateArn !== undefined ? { certificateArn } : {}),
});
app.synth();
