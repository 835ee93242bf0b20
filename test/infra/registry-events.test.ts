import { App, SecretValue, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { OciRegistry } from '../../lib/infra/oci-registry.ts';

function synthesize(props: ConstructorParameters<typeof OciRegistry>[2]) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Events');
  new OciRegistry(stack, 'Registry', props);
  return Template.fromStack(stack);
}

describe('OciRegistry events', () => {
  it('declares a rule, an API destination and a connection per webhook, filtered by kind and repository', () => {
    const template = synthesize({ eventBus: 'create', webhooks: [{ url: 'https://ci.example.com/hook', events: ['push', 'tag'], repositories: ['team/*', 'solo'], secret: SecretValue.unsafePlainText('s') }] });
    template.resourceCountIs('AWS::Events::EventBus', 1);
    template.resourceCountIs('AWS::Events::Connection', 1);
    template.hasResourceProperties('AWS::Events::ApiDestination', { InvocationEndpoint: 'https://ci.example.com/hook', HttpMethod: 'POST' });
    template.hasResourceProperties('AWS::Events::Connection', { AuthorizationType: 'API_KEY', AuthParameters: { ApiKeyAuthParameters: { ApiKeyName: 'X-Ocireg-Webhook-Secret' } } });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['ocireg'], 'detail-type': ['Ocireg Image Action'], detail: { 'action-type': ['PUSH', 'TAG'], 'repository-name': [{ prefix: 'team/' }, 'solo'] } },
      Targets: Match.arrayWith([Match.objectLike({ Arn: Match.anyValue() })]),
    });
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ EVENT_BUS_NAME: Match.anyValue() }) } });
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((policy) => (policy as { Properties: { PolicyDocument: { Statement: Array<{ Action: unknown }> } } }).Properties.PolicyDocument.Statement);
    expect(statements.some((statement) => statement.Action === 'events:PutEvents')).toBe(true);
  });

  it('sends nothing and declares no events without the props', () => {
    const template = synthesize({});
    // The one rule left is garbage collection's schedule, which matches no events.
    expect(Object.values(template.findResources('AWS::Events::Rule')).map((rule) => Object.keys(rule.Properties).includes('EventPattern'))).toEqual([false]);
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ EVENT_BUS_NAME: Match.absent() }) } });
  });
});
