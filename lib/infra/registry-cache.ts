import { Arn, ArnFormat, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, type Role } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { cacheSecretPrefix } from '../storage/secrets/cache-credential-secrets.ts';

export interface RegistryCacheProps {
  /** The registry's table: cache rules are items in it, and it names the rules' secrets. */
  readonly table: Table;
  /** The role of the registry function. */
  readonly role: Role;
}

/**
 * The pull-through cache's AWS side: the registry function may read the cache rules' upstream credentials, one
 * Secrets Manager secret per rule under `ocireg-cache/<table>/`, and nothing else of Secrets Manager. It can neither
 * create nor delete them: `ocireg cache add|rm --stack` does, with the administrator's credentials.
 */
export class RegistryCache extends Construct {
  /** ARN pattern of the rules' secrets (Secrets Manager appends `-` and 6 random characters to a secret's ARN). */
  readonly secretArns: string;

  constructor(scope: Construct, id: string, props: RegistryCacheProps) {
    super(scope, id);
    this.secretArns = Arn.format(
      { service: 'secretsmanager', resource: 'secret', resourceName: `${cacheSecretPrefix(props.table.tableName)}*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME },
      Stack.of(this),
    );
    props.role.addToPolicy(new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [this.secretArns] }));
    const tableId = Stack.of(this).getLogicalId(props.table.node.defaultChild as CfnElement);
    Validations.of(props.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:ocireg-cache/<${tableId}>/*]`,
      reason: 'One secret per cache rule, created by the admin CLI after deployment: their names share the registry\'s prefix, and Secrets Manager appends a random suffix to every secret ARN.',
    });
  }
}
