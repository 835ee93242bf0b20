import { request, type RequestListener } from 'node:http';
import type { FrontAnswer } from './aws-json-front.ts';

/**
 * DynamoDB's throttling answers as the service sends them (HTTP 400, AWS JSON 1.0, `__type` namespaced by the API
 * version), for a test/support/aws-json-front.ts front placed before DynamoDB Local: tests point the real client's
 * endpoint at the front, the code under test is unchanged.
 * @see https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
 * @see https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html (CancellationReasons)
 */

const NAMESPACE = 'com.amazonaws.dynamodb.v20120810#';

export function throttlingException(): FrontAnswer {
  return { status: 400, body: { __type: `${NAMESPACE}ThrottlingException`, message: 'Rate of requests exceeds the allowed throughput.' } };
}

export function provisionedThroughputExceeded(): FrontAnswer {
  return {
    status: 400,
    body: {
      __type: `${NAMESPACE}ProvisionedThroughputExceededException`,
      message: 'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
    },
  };
}

/** A TransactWriteItems cancelled because one of its `actions` items was throttled. */
export function throttledTransaction(actions: number): FrontAnswer {
  const reasons = Array.from({ length: actions }, (_, index) =>
    index === 0 ? { Code: 'ThrottlingError', Message: 'Throughput exceeds the current capacity of your table or index.' } : { Code: 'None' },
  );
  return {
    status: 400,
    body: {
      __type: `${NAMESPACE}TransactionCanceledException`,
      Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((reason) => reason.Code).join(', ')}]`,
      CancellationReasons: reasons,
    },
  };
}

/** A BatchGetItem answered with nothing read: every requested key back as UnprocessedKeys. */
export function allUnprocessed(input: Record<string, unknown>): FrontAnswer {
  const requested = input.RequestItems as Record<string, unknown>;
  return { body: { Responses: Object.fromEntries(Object.keys(requested).map((table) => [table, []])), UnprocessedKeys: requested } };
}

/** Passes requests on to an HTTP service (DynamoDB Local), as the front's `service`. */
export function forwardTo(endpoint: string): RequestListener {
  const target = new URL(endpoint);
  return (req, res) => {
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (error) => res.destroy(error));
    req.pipe(upstream);
  };
}
