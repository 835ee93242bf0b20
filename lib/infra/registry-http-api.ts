import { CfnOutput, Names, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { ApiMapping, DomainName, HttpApi, HttpMethod, LogGroupLogDestination, type HttpStage, type ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { ICertificate } from 'aws-cdk-lib/aws-certificatemanager';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

/** What the HTTP API takes from OciRegistryProps (documented there). */
export interface RegistryHttpApiProps {
  readonly logRetention: RetentionDays;
  readonly throttle?: ThrottleSettings;
  readonly domainName?: string;
  readonly certificate?: ICertificate;
  readonly mtls?: { readonly bucket: IBucket; readonly key: string; readonly version?: string };
}

/**
 * The registry's HTTP API in front of `handler`: its routes, the `$default` stage with JSON access logs, and the
 * custom domain when given. Construct IDs (`ApiLogs`, `Api`, `DefaultStage`, `Domain`, `ApiMapping`) are those the
 * OciRegistry always had: never renamed.
 */
export function registryHttpApi(scope: Construct, handler: IFunction, props: RegistryHttpApiProps): { api: HttpApi; stage: HttpStage; url: string } {
  // HTTP API access logging adds the destination group's ARN to the account's CloudWatch Logs resource policy
  // (5,120 characters for all of them), and stage creation fails in accounts near that cap. Groups under
  // /aws/vendedlogs/ are covered by one wildcard entry instead: AWS's documented way around the cap. The
  // name is derived from the construct path, so two registries in one account or stack do not collide.
  const apiLogs = new LogGroup(scope, 'ApiLogs', {
    logGroupName: `/aws/vendedlogs/apigateway/${Names.uniqueResourceName(scope, { maxLength: 200 })}-access`,
    retention: props.logRetention,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const integration = new HttpLambdaIntegration('Integration', handler);
  const api = new HttpApi(scope, 'Api', {
    description: 'ocireg: OCI distribution API',
    createDefaultStage: false,
    // `/v2/`, the first request of every client, cannot be a route (a route path may not end in "/") and an empty
    // `{proxy+}` is not documented to match it: the catch-all sends it, and anything else, to the function,
    // which answers 404 for paths that are not the registry's.
    defaultIntegration: integration,
    ...(props.mtls ? { disableExecuteApiEndpoint: true } : {}),
  });
  api.addRoutes({ path: '/v2', methods: [HttpMethod.ANY], integration });
  api.addRoutes({ path: '/v2/{proxy+}', methods: [HttpMethod.ANY], integration });
  api.addRoutes({ path: '/token', methods: [HttpMethod.ANY], integration });
  // The web console (`/` reaches the function through the catch-all; its assets are strings in the bundle).
  api.addRoutes({ path: '/console/{proxy+}', methods: [HttpMethod.GET], integration });
  const stage = api.addStage('DefaultStage', {
    stageName: '$default',
    autoDeploy: true,
    ...(props.throttle ? { throttle: props.throttle } : {}),
    accessLogSettings: {
      destination: new LogGroupLogDestination(apiLogs),
      format: AccessLogFormat.custom(
        JSON.stringify({
          requestId: '$context.requestId',
          ip: '$context.identity.sourceIp',
          routeKey: '$context.routeKey',
          path: '$context.path',
          status: '$context.status',
          responseLength: '$context.responseLength',
          latency: '$context.responseLatency',
          integrationStatus: '$context.integrationStatus',
          integrationError: '$context.integrationErrorMessage',
        }),
      ),
    },
  });
  Validations.of(api).acknowledge({
    id: 'AwsSolutions-APIG4',
    reason: 'The registry authenticates in the function (Docker token auth): clients need its 401 with a WWW-Authenticate Bearer challenge, and anonymous pulls of public repositories, which an API Gateway authorizer cannot answer.',
  });

  let url = `https://${api.apiId}.execute-api.${Stack.of(scope).region}.${Stack.of(scope).urlSuffix}`;
  if (props.domainName !== undefined && props.certificate !== undefined) {
    const domain = new DomainName(scope, 'Domain', { domainName: props.domainName, certificate: props.certificate, ...(props.mtls ? { mtls: props.mtls } : {}) });
    new ApiMapping(scope, 'ApiMapping', { api, domainName: domain, stage });
    url = `https://${props.domainName}`;
    new CfnOutput(scope, 'RegionalDomainName', { value: domain.regionalDomainName, description: 'Point the custom domain (CNAME or alias) here' });
  }
  return { api, stage, url };
}
