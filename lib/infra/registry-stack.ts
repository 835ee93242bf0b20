import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import type { Construct } from 'constructs';
import { OciRegistry, type OciRegistryProps } from './oci-registry.ts';

/** Output keys the admin CLI reads (`--stack`): see lib/storage/dynamodb/deployed-identity-store.ts. */
export const STACK_OUTPUTS = { url: 'RegistryUrl', table: 'TableName', bucket: 'BucketName', eventBus: 'EventBusName' } as const;

export interface RegistryStackProps extends StackProps {
  /**
   * The registry's settings.
   * @default - the OciRegistry defaults: auth on, resources retained, execute-api endpoint
   */
  readonly registry?: OciRegistryProps;
  /**
   * ARN of an ACM certificate for `registry.domainName`, for apps that have no certificate construct to pass.
   * @default - `registry.certificate`
   */
  readonly certificateArn?: string;
}

/** A deployable registry: one {@link OciRegistry} and the outputs clients and the admin CLI need. */
export class RegistryStack extends Stack {
  readonly registry: OciRegistry;

  constructor(scope: Construct, id: string, props: RegistryStackProps = {}) {
    super(scope, id, props);
    const registryProps: OciRegistryProps = props.certificateArn
      ? { ...props.registry, certificate: Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn) }
      : (props.registry ?? {});
    this.registry = new OciRegistry(this, 'Registry', registryProps);
    new CfnOutput(this, STACK_OUTPUTS.url, { value: this.registry.url, description: 'Registry URL: docker login <host>, docker push <host>/<name>:<tag>' });
    new CfnOutput(this, STACK_OUTPUTS.table, { value: this.registry.table.tableName, description: 'Metadata and identity table (ocireg users/tokens/grants --table)' });
    new CfnOutput(this, STACK_OUTPUTS.bucket, { value: this.registry.bucket.bucketName, description: 'Blob bucket' });
    if (this.registry.eventBus) {
      new CfnOutput(this, STACK_OUTPUTS.eventBus, { value: this.registry.eventBus.eventBusName, description: 'Event bus of registry events (ocireg gc --stack sends its GC events there)' });
    }
  }
}
