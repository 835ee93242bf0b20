import { App, Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Schedule } from 'aws-cdk-lib/aws-events';
import { describe, expect, it } from 'vitest';
import type { OciRegistryProps } from '../../lib/infra/oci-registry.ts';
import { RegistryStack } from '../../lib/infra/registry-stack.ts';
import { actionsOn, policyStatements } from '../support/iam-statements.ts';

function synthesize(registry: OciRegistryProps = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new RegistryStack(app, 'Gc', { registry });
  const template = Template.fromStack(stack);
  const id = (construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId(construct.node.defaultChild as never);
  return { stack, template, id };
}

describe('scheduled garbage collection in the stack', () => {
  it('runs lambdas/gc.ts daily by default, in a function of its own with a 15-minute timeout and a 24 h grace period', () => {
    const { stack, template, id } = synthesize();
    const gc = stack.registry.gc!;
    const fn = template.findResources('AWS::Lambda::Function')[id(gc.function)]!;

    expect(fn.Properties.Timeout).toBe(900);
    expect(fn.Properties.Environment.Variables).toMatchObject({
      TABLE_NAME: { Ref: id(stack.registry.table) },
      BUCKET_NAME: { Ref: id(stack.registry.bucket) },
      GC_GRACE_MS: String(24 * 60 * 60 * 1000),
    });
    expect(fn.Properties.Role).toEqual({ 'Fn::GetAtt': [id(gc.function.role!), 'Arn'] });
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 day)',
      State: 'ENABLED',
      Targets: [{ Arn: { 'Fn::GetAtt': [id(gc.function), 'Arn'] }, Id: 'Target0', RetryPolicy: { MaximumRetryAttempts: 0 } }],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', { Action: 'lambda:InvokeFunction', Principal: 'events.amazonaws.com', FunctionName: { 'Fn::GetAtt': [id(gc.function), 'Arn'] } });
  });

  it('takes its schedule and grace period from gcSchedule and gcGracePeriod, and gcSchedule false leaves it out', () => {
    const custom = synthesize({ gcSchedule: Schedule.cron({ hour: '3', minute: '30' }), gcGracePeriod: Duration.days(7) });
    const off = synthesize({ gcSchedule: false });

    custom.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'cron(30 3 * * ? *)' });
    expect(custom.template.findResources('AWS::Lambda::Function')[custom.id(custom.stack.registry.gc!.function)]!.Properties.Environment.Variables.GC_GRACE_MS).toBe(String(7 * 24 * 60 * 60 * 1000));
    expect(off.stack.registry.gc).toBeUndefined();
    off.template.resourceCountIs('AWS::Events::Rule', 0);
    // The registry function and the cache's copy function remain.
    off.template.resourceCountIs('AWS::Lambda::Function', 2);
  });

  it('gives the gc role scan and delete on its table and bucket only, and the registry function no Scan and no new delete', () => {
    const { stack, template, id } = synthesize();
    const [tableId, bucketId] = [id(stack.registry.table), id(stack.registry.bucket)];
    const gc = policyStatements(template, id(stack.registry.gc!.function.role!));
    const api = policyStatements(template, id(stack.registry.function.role!));

    for (const statement of gc) for (const action of [statement.Action].flat()) expect(action).not.toContain('*');
    expect(actionsOn(gc, tableId)).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:UpdateItem']);
    expect(actionsOn(gc, bucketId)).toEqual(['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListBucket']);
    expect(gc.flatMap((statement) => [statement.Action].flat()).filter((action) => !action.startsWith('dynamodb:') && !action.startsWith('s3:')).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    expect(actionsOn(api, tableId)).not.toContain('dynamodb:Scan');
    expect(actionsOn(api, bucketId)).toEqual(['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject']);
  });

  it('lets the gc function put its GC events on the registry bus (eventBus), and on nothing without one', () => {
    // Prepare + Act
    const withBus = synthesize({ eventBus: 'create' });
    const without = synthesize();
    // Assess
    const bus = Object.keys(withBus.template.findResources('AWS::Events::EventBus'))[0]!;
    const gc = policyStatements(withBus.template, withBus.id(withBus.stack.registry.gc!.function.role!));
    expect(actionsOn(gc, bus)).toEqual(['events:PutEvents']);
    const fn = withBus.template.findResources('AWS::Lambda::Function')[withBus.id(withBus.stack.registry.gc!.function)]!;
    expect(fn.Properties.Environment.Variables.EVENT_BUS_NAME).toEqual({ Ref: bus });
    const gcWithout = policyStatements(without.template, without.id(without.stack.registry.gc!.function.role!));
    expect(gcWithout.flatMap((statement) => [statement.Action].flat()).filter((action) => action.startsWith('events:'))).toEqual([]);
    expect(without.template.findResources('AWS::Lambda::Function')[without.id(without.stack.registry.gc!.function)]!.Properties.Environment.Variables.EVENT_BUS_NAME).toBeUndefined();
  });
});
