import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';

/** The environment an administrator's `ocireg … --table` runs with against DynamoDB Local at `dynamoEndpoint`. */
export function awsAdminEnv(dynamoEndpoint: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REGION: LOCAL_REGION,
  };
}
