import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciRegistry } from '../../lib/infra/oci-registry.ts';
import { RegistryStack, STACK_OUTPUTS } from '../../lib/infra/registry-stack.ts';
import { BLOB_BUCKET, METADATA_TABLE, UPLOAD_RETENTION_DAYS } from '../../lib/storage/aws-resources.ts';
import { actionsOn, policyStatements } from '../support/iam-statements.ts';
import { TABLE_OUTPUT } from '../../lib/storage/dynamodb/deployed-identity-store.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** An app whose NodejsFunction is not bundled (a placeholder asset): fast, for template assertions. */
function unbundledApp(): App {
  return new App({ context: { 'aws:cdk:bundling-stacks': [] } });
}

function synthesize(props: ConstructorParameters<typeof RegistryStack>[2] = {}) {
  const app = unbundledApp();
  const stack = new RegistryStack(app, 'Test', props);
  return { app, stack, template: Template.fromStack(stack) };
}

describe('RegistryStack template', () => {
  const { template, stack } = synthesize();
  const bucketId = stack.getLogicalId(stack.registry.bucket.node.defaultChild as never);
  const tableId = stack.getLogicalId(stack.registry.table.node.defaultChild as never);

  it('runs the function on arm64 with Node.js 22 or newer, 1024 MB and a 29 s timeout, configured by environment', () => {
    const functions = template.findResources('AWS::Lambda::Function');
    const fn = functions[stack.getLogicalId(stack.registry.function.node.defaultChild as never)];

    // The others: scheduled garbage collection (test/infra/registry-gc.test.ts) and the cache's copy function.
    expect(Object.keys(functions)).toHaveLength(3);
    expect(fn!.Properties.Architectures).toEqual(['arm64']);
    expect(Number(/^nodejs(\d+)\.x$/.exec(fn!.Properties.Runtime)?.[1])).toBeGreaterThanOrEqual(22);
    expect(fn!.Properties.MemorySize).toBe(1024);
    expect(fn!.Properties.Timeout).toBe(29);
    expect(Object.keys(fn!.Properties.Environment.Variables).sort()).toEqual(
      ['BUCKET_NAME', 'CACHE_COPY_FUNCTION', 'MAX_CHUNK_LENGTH', 'POWERTOOLS_LOG_LEVEL', 'POWERTOOLS_SERVICE_NAME', 'PRESIGN_EXPIRES_IN', 'SIGNING_KEY_SECRET_ARN', 'TABLE_NAME'],
    );
    expect(fn!.Properties.Environment.Variables.MAX_CHUNK_LENGTH).toBe(String(4 * 1024 * 1024));
    expect(fn!.Properties.Environment.Variables.TABLE_NAME).toEqual({ Ref: tableId });
    expect(fn!.Properties.Environment.Variables.BUCKET_NAME).toEqual({ Ref: bucketId });
  });

  it('routes ANY /v2, ANY /v2/{proxy+}, ANY /token, GET /console/{proxy+} and the catch-all to the function on an auto-deployed $default stage with access logs', () => {
    const routeKeys = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((route) => route.Properties.RouteKey).sort();

    expect(routeKeys).toEqual(['$default', 'ANY /token', 'ANY /v2', 'ANY /v2/{proxy+}', 'GET /console/{proxy+}']);
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    template.resourceCountIs('AWS::ApiGatewayV2::Integration', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', { IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('\\$context.requestId') },
    });
  });

  it('blocks public access to the bucket, encrypts it, denies non-TLS requests and retains it', () => {
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('gives the bucket the lifecycle rules of the shared definition: abort stale multipart uploads, expire upload buffers', () => {
    const [bucket] = Object.values(template.findResources('AWS::S3::Bucket'));
    const rules = bucket!.Properties.LifecycleConfiguration.Rules;

    expect(rules).toHaveLength(BLOB_BUCKET.lifecycleRules.length);
    expect(rules).toContainEqual({ Id: 'abort-incomplete-multipart-uploads', Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: UPLOAD_RETENTION_DAYS } });
    expect(rules).toContainEqual({ Id: 'expire-upload-buffers', Status: 'Enabled', Prefix: 'uploads/', ExpirationInDays: UPLOAD_RETENTION_DAYS });
  });

  it('makes the table on-demand with point-in-time recovery and TTL, keyed as the shared definition says, and retains it', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: METADATA_TABLE.timeToLiveAttribute, Enabled: true },
        KeySchema: [
          { AttributeName: METADATA_TABLE.partitionKey.name, KeyType: 'HASH' },
          { AttributeName: METADATA_TABLE.sortKey.name, KeyType: 'RANGE' },
        ],
      },
    });
    expect(template.findResources('AWS::DynamoDB::Table')[tableId]!.Properties.GlobalSecondaryIndexes).toBeUndefined();
  });

  it('grants the function only the actions it calls, none with a wildcard, and nothing on *', () => {
    const statements = policyStatements(template, stack.getLogicalId(stack.registry.function.role!.node.defaultChild as never));
    const secretId = stack.getLogicalId(stack.registry.signingKey!.node.defaultChild as never);

    for (const statement of statements) {
      expect(statement.Effect).toBe('Allow');
      for (const action of [statement.Action].flat()) expect(action).not.toContain('*');
      expect(statement.Resource).not.toBe('*');
    }
    // The table's name is also part of the cache secrets' ARN pattern (next test).
    expect(actionsOn(statements, tableId).filter((action) => !action.startsWith('secretsmanager:'))).toEqual(['dynamodb:BatchGetItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(actionsOn(statements, bucketId)).toEqual(['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject']);
    expect(actionsOn(statements, secretId)).toEqual(['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue']);
    // No managed policies: the role writes to its own log group only.
    template.hasResourceProperties('AWS::IAM::Role', { ManagedPolicyArns: Match.absent() });
  });

  it('lets the registry and copy functions read the cache rules\' secrets under ocireg-cache/<table>/ only, and neither create nor delete them', () => {
    const statements = policyStatements(template).filter((statement) => JSON.stringify(statement.Resource).includes('ocireg-cache/'));
    expect(statements).toHaveLength(2);
    for (const statement of statements) {
      expect(statement.Action).toBe('secretsmanager:GetSecretValue');
      expect(JSON.stringify(statement.Resource)).toMatch(new RegExp(`:secret:ocireg-cache/",\\{"Ref":"${tableId}"\\},"/\\*"`));
    }
    const all = policyStatements(template).flatMap((statement) => [statement.Action].flat());
    expect(all.filter((action) => /secretsmanager:(Create|Delete|Restore)/.test(action))).toEqual([]);
  });

  it("gives the cache's copy function 15 minutes, one async retry, and the registry function the right to invoke it alone", () => {
    const copyId = stack.getLogicalId(stack.registry.cache.copyFunction.node.defaultChild as never);
    const copy = template.findResources('AWS::Lambda::Function')[copyId]!;
    const invokes = policyStatements(template).filter((statement) => [statement.Action].flat().includes('lambda:InvokeFunction'));

    expect(copy.Properties.Timeout).toBe(900);
    expect(Object.keys(copy.Properties.Environment.Variables).sort()).toEqual(['BUCKET_NAME', 'POWERTOOLS_LOG_LEVEL', 'POWERTOOLS_SERVICE_NAME', 'TABLE_NAME']);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 1, MaximumEventAgeInSeconds: 3600 });
    expect(invokes).toHaveLength(1);
    expect(JSON.stringify(invokes[0]!.Resource)).toContain(copyId);
    expect(actionsOn(policyStatements(template), bucketId).filter((action) => action === 's3:PutObject')).toHaveLength(2);
  });

  it('keeps logs for a month', () => {
    const groups = Object.values(template.findResources('AWS::Logs::LogGroup'));

    expect(groups).toHaveLength(4);
    for (const group of groups) expect(group.Properties.RetentionInDays).toBe(30);
  });

  it('writes API access logs to a group under /aws/vendedlogs/, outside the account-wide CloudWatch Logs resource policy', () => {
    const [stageGroupRef] = Object.values(template.findResources('AWS::ApiGatewayV2::Stage')).map((stage) => stage.Properties.AccessLogSettings.DestinationArn);
    const groupId = (stageGroupRef as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const group = template.findResources('AWS::Logs::LogGroup')[groupId]!;

    expect(group.Properties.LogGroupName).toMatch(/^\/aws\/vendedlogs\/apigateway\/[\w.\-/#]+$/);
    // CloudWatch Logs: a group name has at most 512 characters.
    expect(group.Properties.LogGroupName.length).toBeLessThanOrEqual(512);
  });

  it('outputs the registry URL, and the table and bucket names under the keys the admin CLI reads', () => {
    const outputs = template.findOutputs('*');

    expect(STACK_OUTPUTS.table).toBe(TABLE_OUTPUT);
    expect(Object.keys(outputs).sort()).toEqual(['BucketName', 'RegistryUrl', 'TableName']);
    expect(outputs.TableName!.Value).toEqual({ Ref: tableId });
    expect(outputs.BucketName!.Value).toEqual({ Ref: bucketId });
    expect(JSON.stringify(outputs.RegistryUrl!.Value)).toContain('execute-api');
  });

  it('outputs the event bus name when the registry sends events (ocireg gc --stack sends its GC events there)', () => {
    const created = synthesize({ registry: { eventBus: 'create' } });
    const onDefault = synthesize({ registry: { eventBus: 'default' } });

    const busId = created.stack.getLogicalId(created.stack.registry.eventBus!.node.defaultChild as never);
    expect(created.template.findOutputs(STACK_OUTPUTS.eventBus)[STACK_OUTPUTS.eventBus]!.Value).toEqual({ Ref: busId });
    expect(onDefault.template.findOutputs(STACK_OUTPUTS.eventBus)[STACK_OUTPUTS.eventBus]!.Value).toBe('default');
  });
});

describe('OciRegistry options', () => {
  it('maps a custom domain to the API and makes it the registry URL', () => {
    const app = unbundledApp();
    const { template } = (() => {
      const stack = new RegistryStack(app, 'Domain', { registry: { domainName: 'registry.example.com' }, certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' });
      return { template: Template.fromStack(stack) };
    })();

    template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: 'registry.example.com',
      DomainNameConfigurations: [Match.objectLike({ CertificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc', EndpointType: 'REGIONAL' })],
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::ApiMapping', { DomainName: Match.anyValue(), Stage: Match.anyValue() });
    expect(template.findOutputs('RegistryUrl').RegistryUrl!.Value).toBe('https://registry.example.com');
    expect(Object.keys(template.findOutputs('*')).some((key) => key.includes('RegionalDomainName'))).toBe(true);
  });

  it('with mtls gives the custom domain the S3 truststore and turns the execute-api endpoint off (off by default)', () => {
    const app = unbundledApp();
    const stack = new RegistryStack(app, 'Mtls');
    const truststore = new Bucket(stack, 'Truststore');
    new OciRegistry(stack, 'Private', {
      domainName: 'private.example.com',
      certificate: Certificate.fromCertificateArn(stack, 'Cert', 'arn:aws:acm:eu-west-1:123456789012:certificate/abc'),
      mtls: { bucket: truststore, key: 'ca.pem', version: 'v7' },
    });

    const template = Template.fromStack(stack);
    const apis = Object.values(template.findResources('AWS::ApiGatewayV2::Api')).map((api) => api.Properties.DisableExecuteApiEndpoint as boolean | undefined);

    template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: 'private.example.com',
      MutualTlsAuthentication: { TruststoreUri: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith(['s3://', '/ca.pem'])] }), TruststoreVersion: 'v7' },
    });
    // The stack's own registry keeps its endpoint; the mTLS one has none to bypass the client certificate through.
    expect(apis.sort()).toEqual([true, undefined]);
  });

  it('refuses mtls without a custom domain', () => {
    const app = unbundledApp();
    const stack = new RegistryStack(app, 'Bad');

    expect(() => new OciRegistry(stack, 'Private', { mtls: { bucket: new Bucket(stack, 'Truststore'), key: 'ca.pem' } })).toThrow(/mtls needs domainName and certificate/);
  });

  it('refuses a domain without a certificate, saying what was given', () => {
    const app = unbundledApp();

    expect(() => new RegistryStack(app, 'Bad', { registry: { domainName: 'registry.example.com' } })).toThrow(/supply domainName and certificate together, got domainName=registry\.example\.com and no certificate/);
  });

  it('refuses a chunk length whose base64 body would not fit a Lambda event', () => {
    const app = unbundledApp();

    expect(() => new RegistryStack(app, 'Bad', { registry: { maxChunkLength: 5 * 1024 * 1024 } })).toThrow(/maxChunkLength must be an integer from 1 to \d+/);
  });

  it('with blobHeadRedirect tells the function to redirect blob HEADs to S3 (off by default: no variable)', () => {
    const variables = (template: Template) => Object.values(template.findResources('AWS::Lambda::Function')).find((fn) => fn.Properties.Description === 'ocireg: OCI distribution API')!.Properties.Environment.Variables;

    expect(variables(synthesize({ registry: { blobHeadRedirect: true } }).template).BLOB_HEAD_REDIRECT).toBe('true');
    expect(variables(synthesize().template).BLOB_HEAD_REDIRECT).toBeUndefined();
  });

  it('without auth creates no secret and grants no Secrets Manager action but reading the cache rules\' secrets', () => {
    const { template } = synthesize({ registry: { auth: false } });

    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    const secretStatements = policyStatements(template).filter((statement) => [statement.Action].flat().some((action) => action.startsWith('secretsmanager:')));
    expect(secretStatements.map((statement) => [statement.Action, JSON.stringify(statement.Resource).includes('ocireg-cache/')])).toEqual([
      ['secretsmanager:GetSecretValue', true],
      ['secretsmanager:GetSecretValue', true],
    ]);
  });

  it('can be placed twice in one stack', () => {
    const app = unbundledApp();
    const stack = new RegistryStack(app, 'Two');
    new OciRegistry(stack, 'Second', { certificate: Certificate.fromCertificateArn(stack, 'Cert', 'arn:aws:acm:eu-west-1:123456789012:certificate/abc'), domainName: 'second.example.com' });

    const template = Template.fromStack(stack);
    const accessLogGroups = Object.values(template.findResources('AWS::Logs::LogGroup'))
      .map((group) => group.Properties.LogGroupName as string | undefined)
      .filter((name) => name !== undefined);

    template.resourceCountIs('AWS::Lambda::Function', 6);
    expect(new Set(accessLogGroups).size).toBe(2);
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('reports no unacknowledged violation, and every acknowledgement gives a reason', () => {
    const app = unbundledApp();
    new RegistryStack(app, 'Nag', { registry: { domainName: 'registry.example.com' }, certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' });

    const report = new AwsSolutionsChecks().validateScope(app);
    const acknowledged = acknowledgements(app);

    expect(report.violations.map((violation) => `${violation.ruleName}: ${violation.violatingResources.map((resource) => resource.resourceLogicalId).join(', ')}`)).toEqual([]);
    const bucketObjects = expect.stringMatching(/^AwsSolutions-IAM5\[Resource::<.+\.Arn>\/\*\]$/);
    // The registry function's role and garbage collection's each act on every key of the bucket.
    expect(acknowledged.map((ack) => ack.id).sort()).toEqual([
      'AwsSolutions-APIG4',
      bucketObjects,
      bucketObjects,
      // The cache's copy function writes new keys under blobs/ only; both functions read the cache secrets.
      expect.stringMatching(/^AwsSolutions-IAM5\[Resource::<.+\.Arn>\/blobs\/\*\]$/),
      expect.stringMatching(/^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:ocireg-cache\/<.+>\/\*\]$/),
      expect.stringMatching(/^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:ocireg-cache\/<.+>\/\*\]$/),
      'AwsSolutions-S1',
      'AwsSolutions-SMG4',
    ]);
    for (const ack of acknowledged) expect(ack.reason.length).toBeGreaterThan(40);
  });

  it('does see violations: the checks are live on the same app', () => {
    const app = unbundledApp();
    const stack = new RegistryStack(app, 'Unacknowledged');
    new Bucket(stack, 'Plain');

    const report = new AwsSolutionsChecks().validateScope(app);

    expect(report.violations.map((violation) => violation.ruleName)).toEqual(expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10']));
  });
});

/** Acknowledgements recorded by `Validations.of(c).acknowledge()`: metadata `{ "Annotation::<rule id>": reason }`. */
function acknowledgements(root: IConstruct): Array<{ id: string; reason: string }> {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) => Object.entries(entry.data as Record<string, string>).map(([key, reason]) => ({ id: key.replace(/^Annotation::/, ''), reason }))),
  );
}

describe('bin/app.ts synth', () => {
  let outdir: string;
  beforeAll(async () => {
    outdir = await mkdtemp(join(tmpdir(), 'ocireg-synth-'));
  });
  afterAll(async () => {
    await rm(outdir, { recursive: true, force: true });
  });

  it('synthesizes offline without credentials and bundles each function with local esbuild into one minified ES module', async () => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CDK_OUTDIR: outdir };
    const started = performance.now();
    await run(process.execPath, [join(ROOT, 'bin/app.ts')], { cwd: ROOT, env, timeout: 120_000 });
    const synthMs = performance.now() - started;

    const template = JSON.parse(await readFile(join(outdir, 'ocireg.template.json'), 'utf8'));
    const assets = (await readdir(outdir)).filter((entry) => entry.startsWith('asset.'));
    // The registry function, scheduled garbage collection and the cache's copy function.
    expect(assets).toHaveLength(3);
    const sizes = await Promise.all(assets.map(async (asset) => [asset, (await stat(join(outdir, asset, 'index.mjs'))).size] as const));
    const [largest] = sizes.sort(([, a], [, b]) => b - a);
    const bundle = join(outdir, largest![0], 'index.mjs');
    const { size } = await stat(bundle);
    const code = await readFile(bundle, 'utf8');
    console.log(`synth ${Math.round(synthMs)} ms; bundle ${size} bytes`);

    expect(Object.values(template.Resources).some((resource: any) => resource.Type === 'AWS::Lambda::Function' && resource.Properties.Handler === 'index.handler')).toBe(true);
    expect(size).toBeGreaterThan(100_000);
    expect(size).toBeLessThan(1_500_000);
    // Minified (no indentation runs) and free of CDK code.
    expect(code.split('\n').length).toBeLessThan(200);
    expect(code).not.toContain('aws-cdk-lib');

    // The bundle loads as an ES module and exports the handler.
    for (const [asset] of sizes) {
      const probe = `import(${JSON.stringify(join(outdir, asset, 'index.mjs'))}).then((m) => console.log(typeof m.handler))`;
      const { stdout } = await run(process.execPath, ['-e', probe], { env: { PATH: process.env.PATH, TABLE_NAME: 't', BUCKET_NAME: 'b', AWS_REGION: 'eu-west-1' } });
      expect(stdout.trim()).toBe('function');
    }
  });
});
