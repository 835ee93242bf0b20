import type { Template } from 'aws-cdk-lib/assertions';

export type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

/** The statements of every policy, or of those attached to the role with logical id `roleId`. */
export function policyStatements(template: Template, roleId?: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => roleId === undefined || JSON.stringify(policy.Properties.Roles).includes(`"${roleId}"`))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
}

export function actionsOn(statements: Statement[], logicalId: string): string[] {
  const mentions = (resource: unknown) => JSON.stringify(resource).includes(`"${logicalId}"`);
  return statements.filter((statement) => mentions(statement.Resource)).flatMap((statement) => [statement.Action].flat()).sort();
}
