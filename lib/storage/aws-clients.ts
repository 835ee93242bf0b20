import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/**
 * The one place the registry's AWS SDK clients are configured: the Lambda (lambdas/registry-api.ts), `dev:aws`
 * and the tests (lib/dev/aws-local.ts) and the admin CLI (`--stack`/`--table`) all build them here, so the
 * configuration the tests run is the configuration production runs. Callers choose only where the clients connect
 * ({@link AwsClientOptions}); how they behave is decided below, once.
 */

/** Where the clients connect and as whom. Everything absent comes from the SDK's usual chain (env, profile, role). */
export interface AwsClientOptions {
  region?: string | undefined;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  /** An S3-compatible endpoint (an emulator, or a public name presigned URLs must carry), addressed path-style. */
  endpoint?: string | undefined;
}

/**
 * S3 checksums: on request, only where an operation requires one; on response, validated whenever S3 returns one.
 *
 * Why not the SDK's request default (`WHEN_SUPPORTED`): it adds a CRC32 to every UploadPart, while
 * CreateMultipartUpload (which has no body) is sent without `ChecksumAlgorithm` and CompleteMultipartUpload
 * without part checksums. The UploadPart reference says a part's checksum algorithm "must be the same for all
 * parts and it match the checksum value supplied in the CreateMultipartUpload request", and public reports show
 * exactly this sequence failing on real S3 with InvalidPart at Complete (aws-sdk-go-v2#3005, aws-sdk-java-v2#6518,
 * transloadit/uppy#6167) or "Checksum Type mismatch" at UploadPart (romange/helio#152). With `WHEN_REQUIRED` the
 * multipart upload is the classic one: no algorithm on Create, none on the parts, none in Complete, which the
 * CompletedPart reference describes ("this checksum is present if the multipart upload request was created with
 * the … checksum algorithm"); S3 computes its default CRC64NVME for such an upload itself.
 *
 * Nothing is lost in transit by going without: every body the registry sends is a byte array, for which SigV4
 * signs the body's SHA-256 (`x-amz-content-sha256`) and S3 refuses a body that does not match it
 * (XAmzContentSHA256Mismatch). Operations that require a checksum (DeleteObjects, PutBucketLifecycleConfiguration)
 * still get the SDK's CRC32, and a blob written by one PutObject carries its own `x-amz-checksum-sha256` (the
 * blob's digest, verified by S3: BadDigest).
 *
 * Responses keep the SDK default: GetObject asks for the object's checksum and the SDK verifies the bytes against
 * it, so a buffered append read back to be assembled into a part cannot come back different unnoticed.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompletedPart.html
 * @see https://docs.aws.amazon.com/sdkref/latest/guide/feature-dataintegrity.html
 * @see docs/aws-assumptions.md
 */
export const S3_CHECKSUMS = { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_SUPPORTED' } as const;

function common(options: AwsClientOptions): { region?: string; credentials?: AwsClientOptions['credentials']; endpoint?: string } {
  return {
    ...(options.region !== undefined ? { region: options.region } : {}),
    ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
  };
}

/** The S3 client of the blob store (and of presigned URLs, with the endpoint they must name). */
export function createS3Client(options: AwsClientOptions = {}): S3Client {
  return new S3Client({
    ...common(options),
    // Emulators serve buckets by path (s3rver: vhostBuckets off); AWS's own endpoints need no option.
    ...(options.endpoint !== undefined ? { forcePathStyle: true } : {}),
    ...S3_CHECKSUMS,
  });
}

/** The DynamoDB client of the metadata and identity stores. */
export function createDynamoDbClient(options: AwsClientOptions = {}): DynamoDBClient {
  return new DynamoDBClient(common(options));
}

/** The Secrets Manager client that loads (or creates) the token signing key. */
export function createSecretsManagerClient(options: AwsClientOptions = {}): SecretsManagerClient {
  return new SecretsManagerClient(common(options));
}

/** The EventBridge client registry events are put with (`EVENT_BUS_NAME`). */
export function createEventBridgeClient(options: AwsClientOptions = {}): EventBridgeClient {
  return new EventBridgeClient(common(options));
}

/** The CloudFormation client the admin CLI reads a stack's outputs with (`--stack`). */
export function createCloudFormationClient(options: AwsClientOptions = {}): CloudFormationClient {
  return new CloudFormationClient(common(options));
}

/** The Lambda client the registry function starts background cache copies with (InvocationType Event). */
export function createLambdaClient(options: AwsClientOptions = {}): LambdaClient {
  return new LambdaClient(common(options));
}
