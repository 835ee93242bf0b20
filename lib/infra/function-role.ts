import { Stack, Validations } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import type { CfnBucket, IBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

/** A Lambda function's own role, allowed to write to its log group; each caller adds what its function needs. */
export function functionRole(scope: Construct, id: string, logs: ILogGroup, description: string): Role {
  const role = new Role(scope, id, { assumedBy: new ServicePrincipal('lambda.amazonaws.com'), description });
  role.addToPolicy(new PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logs.logGroupArn] }));
  return role;
}

/** Acknowledges cdk-nag's wildcard finding for `role`'s object actions on every key of `bucket`, with the reason. */
export function acknowledgeBucketObjects(role: Role, bucket: IBucket, reason: string): void {
  Validations.of(role).acknowledge({ id: `AwsSolutions-IAM5[Resource::<${Stack.of(role).getLogicalId(bucket.node.defaultChild as CfnBucket)}.Arn>/*]`, reason });
}
