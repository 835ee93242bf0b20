import { S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { MAX_PART_NUMBER } from './s3-limits.ts';

/** Any AWS SDK v3 client: S3Client, DynamoDBClient… */
interface SdkClient {
  middlewareStack: S3Client['middlewareStack'];
}

/**
 * Counts the requests AWS SDK clients actually send, per operation (presigning sends nothing and is not
 * counted; each retry is). Made for S3; attached to a DynamoDBClient it counts DynamoDB requests the same way.
 */
export class S3CallCounter {
  readonly #counts = new Map<string, number>();
  readonly #attached = new WeakSet<object>();

  /** Adds the counter (and, for S3, the client-side part number check) to `client`; returns it. */
  attach<Client extends object>(client: Client): Client {
    const { middlewareStack } = client as unknown as SdkClient;
    if (this.#attached.has(client)) return client;
    this.#attached.add(client);
    middlewareStack.add(
      (next, context) => async (args) => {
        const operation = operationOf(context.commandName);
        const partNumber = (args.input as { PartNumber?: unknown }).PartNumber;
        if ((operation === 'UploadPart' || operation === 'UploadPartCopy') && !(Number.isInteger(partNumber) && (partNumber as number) >= 1 && (partNumber as number) <= MAX_PART_NUMBER)) {
          throw s3Exception('InvalidArgument', `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`, 400);
        }
        return next(args);
      },
      { step: 'initialize', name: 'ocireg-strict-part-number' },
    );
    middlewareStack.add(
      (next, context) => async (args) => {
        const operation = operationOf(context.commandName);
        this.#counts.set(operation, (this.#counts.get(operation) ?? 0) + 1);
        return next(args);
      },
      // The deserialize step runs once per HTTP attempt, and never for getSignedUrl (it stops at signing).
      { step: 'deserialize', name: 'ocireg-s3-call-counter' },
    );
    return client;
  }

  /** Requests sent for one operation (`'UploadPart'`, `'PutObject'`…) since the last reset. */
  count(operation: string): number {
    return this.#counts.get(operation) ?? 0;
  }

  /** All requests sent since the last reset. */
  total(): number {
    let total = 0;
    for (const count of this.#counts.values()) total += count;
    return total;
  }

  /** Counts by operation, sorted by name, zeros left out. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counts].filter(([, count]) => count > 0).sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  reset(): void {
    this.#counts.clear();
  }
}

function operationOf(commandName: string | undefined): string {
  return (commandName ?? 'Unknown').replace(/Command$/, '');
}

function s3Exception(name: string, message: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: status } });
}
