import type { GcReport } from '../registry/gc/gc-report.ts';
import type { GcRequest } from '../server/control-socket.ts';

/** `ocireg gc --stack/--table`: the deployed registry's table and bucket, with the administrator's credentials. */
export async function runDeployedGc(_target: { stack?: string | undefined; table?: string | undefined; region?: string | undefined }, _request: GcRequest): Promise<GcReport> {
  throw new Error('garbage collection of a deployed registry is not available yet: the scheduled function collects it');
}
