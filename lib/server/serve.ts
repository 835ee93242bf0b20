import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRegistryApp } from '../http/app.ts';
import type { RequestLog } from '../http/types.ts';
import { PolicyCache } from '../registry/policy-cache.ts';
import { Registry } from '../registry/registry.ts';
import { AuthService } from '../auth/auth-service.ts';
import { TokenSigner } from '../auth/token-signer.ts';
import { FsIdentityStore } from '../storage/fs/fs-identity-store.ts';
import { loadOrCreateSigningKey } from '../storage/fs/fs-signing-key.ts';
import { FsKeys } from '../storage/fs/keys.ts';
import { FsUsageStore } from '../storage/fs/fs-usage-store.ts';
import { FsPolicyStore } from '../storage/fs/fs-policy-store.ts';
import { openFsStorage } from '../storage/fs/open-fs-storage.ts';
import { SERVICE_NAME } from '../auth/service-name.ts';
import { claimDataDir } from './control-socket.ts';
import { listen } from './listen.ts';
import { WebhookSink, type WebhookTarget } from './webhook-sink.ts';
import { httpUpstreams } from '../client/upstream-registry.ts';
import { PullThroughCache } from '../registry/pull-through-cache.ts';
import { QuotaGuard } from '../registry/quota.ts';
import { FsCacheRuleStore } from '../storage/fs/fs-cache-rule-store.ts';

export const DEFAULT_CACHE_REVALIDATE_MS = 5 * 60_000;
import { gcSummary, LocalGc } from './local-gc.ts';
import { StoreRetentionPlanner } from '../registry/retention-planner.ts';
import { nodeListener } from './node-adapter.ts';

export interface ServeOptions {
  host: string;
  port: number;
  dataDir: string;
  tlsCert?: string;
  tlsKey?: string;
  /**
   * PEM CA certificate(s): with TLS, every client must present a certificate signed by one of them, or the TLS
   * handshake fails before any HTTP (mutual TLS, as API Gateway's custom domain truststore).
   */
  tlsClientCa?: string;
  /** Refuse request bodies over this many bytes, as the AWS deployment must (see FsBlobStore). */
  maxChunkLength?: number;
  /** Docker token authentication, with identities and the signing key in the data dir. */
  auth?: boolean;
  /** Where events are POSTed (signed when a secret is given), asynchronously. */
  webhooks?: WebhookTarget[];
  /** How long a cached tag is served before the upstream is asked again (HEAD); default 5 minutes. */
  cacheRevalidateMs?: number;
  /** Where the one-JSON-line-per-request log goes. Default: stdout. */
  writeLog?: (line: string) => void;
  /** Run garbage collection this often (ms); off when undefined. */
  gcEveryMs?: number;
  /** Grace period of those runs. @default 24 h */
  gcGraceMs?: number;
}

export interface RunningServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** `ocireg serve`: the registry over the filesystem store, on node:http (or https with a certificate). */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const writeLog = options.writeLog ?? ((line: string) => process.stdout.write(`${line}\n`));
  // Claim the data dir before opening it: opening clears tmp/, which another owner may be writing to.
  let gc: LocalGc | undefined;
  const keys = new FsKeys(resolve(options.dataDir));
  const control = await claimDataDir(keys, { gc: (request) => gc!.gc(request) });
  try {
    return await serveClaimed(options, keys, control, writeLog, (local) => (gc = local));
  } catch (error) {
    await control.close();
    throw error;
  }
}

async function serveClaimed(
  options: ServeOptions,
  keys: FsKeys,
  control: { close(): Promise<void> },
  writeLog: (line: string) => void,
  setGc: (gc: LocalGc) => void,
): Promise<RunningServer> {
  const storage = await openFsStorage(keys.root, options.maxChunkLength);
  const policies = new PolicyCache(new FsPolicyStore(storage.keys));
  const usage = new FsUsageStore(storage.keys);
  const cache = new PullThroughCache({
    rules: new FsCacheRuleStore(storage.keys),
    blobs: storage.blobs,
    metadata: storage.metadata,
    upstreamFor: httpUpstreams(),
    revalidateAfterMs: options.cacheRevalidateMs ?? DEFAULT_CACHE_REVALIDATE_MS,
    log: (entry) => writeLog(JSON.stringify({ time: new Date().toISOString(), ...entry })),
    // Cached repositories are read-only: no upload competes with a fill, so the cache keeps its own reservations.
    quota: new QuotaGuard(policies, usage),
  });
  const webhooks = options.webhooks?.length ? new WebhookSink({ targets: options.webhooks, log: (entry) => writeLog(JSON.stringify({ time: new Date().toISOString(), ...entry })) }) : undefined;
  const registry = new Registry({
    blobs: storage.blobs,
    metadata: storage.metadata,
    history: storage.history,
    policies,
    usage,
    cache,
    onPullNotRecorded: (error, pull) => writeLog(JSON.stringify({ time: new Date().toISOString(), level: 'warn', msg: 'pull not recorded', ...pull, error: String(error) })),
    ...(webhooks ? { events: webhooks, onEventFailure: (error: unknown) => writeLog(JSON.stringify({ level: 'error', msg: 'event not sent', error: String(error) })) } : {}),
  });
  // `ocireg gc` (through the control socket) and `--gc-every` apply the retention rules, then sweep; their removals
  // become GC events and tag history.
  const retention = new StoreRetentionPlanner({ metadata: storage.metadata, policies: new FsPolicyStore(storage.keys), history: storage.history });
  const gc = new LocalGc(storage, retention, (removal) =>
    registry.versions.recordCollected(removal).catch((error: unknown) => writeLog(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'gc removal not recorded', removal, error: String(error) }))),
  );
  setGc(gc);
  const timer = options.gcEveryMs === undefined ? undefined : startPeriodicGc(gc, options.gcEveryMs, options.gcGraceMs, writeLog);
  const auth = options.auth ? await localAuthService(storage.keys) : undefined;
  const app = createRegistryApp({ registry, ...(auth ? { auth } : {}), log: (line, cause) => writeLog(formatLog(line, cause)) });

  const tls = options.tlsCert !== undefined || options.tlsKey !== undefined;
  if (tls && (options.tlsCert === undefined || options.tlsKey === undefined)) {
    throw new Error(`--tls-cert and --tls-key go together, got cert=${options.tlsCert ?? 'none'} key=${options.tlsKey ?? 'none'}`);
  }
  if (options.tlsClientCa !== undefined && !tls) throw new Error('--tls-client-ca needs --tls-cert and --tls-key: client certificates are a TLS feature');
  // requestCert + rejectUnauthorized: a missing or foreign client certificate ends the handshake, so no request
  // (not even /v2/ or /token) is answered without one; the password/token check still follows for those with one.
  const clientCa = options.tlsClientCa === undefined ? {} : { ca: await readFile(options.tlsClientCa), requestCert: true, rejectUnauthorized: true };
  const serverOptions = {
    // Large layers take longer than Node's default 5-minute request timeout on slow links.
    requestTimeout: 0,
    headersTimeout: 60_000,
    keepAliveTimeout: 65_000,
  };
  const server: Server = tls
    ? createHttpsServer(
        { ...serverOptions, cert: await readFile(options.tlsCert!), key: await readFile(options.tlsKey!), ...clientCa },
        nodeListener(app, 'https'),
      )
    : createHttpServer(serverOptions, nodeListener(app, 'http'));

  const listening = await listen(server, options.port, options.host, tls ? 'https' : 'http');
  const close = async () => {
    clearInterval(timer);
    await Promise.all([listening.close(), control.close()]);
    await webhooks?.close();
  };
  return { url: listening.url, server, close };
}

/** `serve --gc-every`: one run per period (never two at once), one JSON summary line each. */
function startPeriodicGc(gc: LocalGc, everyMs: number, graceMs: number | undefined, writeLog: (line: string) => void): NodeJS.Timeout {
  const timer = setInterval(() => {
    gc.gc({ dryRun: false, ...(graceMs !== undefined ? { graceMs } : {}) }).then(
      (report) => writeLog(JSON.stringify({ time: new Date().toISOString(), level: 'info', ...gcSummary(report) })),
      (error: unknown) => writeLog(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'gc failed', error: String(error) })),
    );
  }, everyMs);
  timer.unref();
  return timer;
}


async function localAuthService(keys: FsKeys): Promise<AuthService> {
  const signer = await TokenSigner.fromPem(await loadOrCreateSigningKey(keys), SERVICE_NAME, SERVICE_NAME);
  return new AuthService({ identities: new FsIdentityStore(keys), signer });
}

function formatLog(line: RequestLog, cause: unknown): string {
  const entry: Record<string, unknown> = { time: new Date().toISOString(), level: cause ? 'error' : 'info', msg: 'request', ...line };
  if (cause) entry.cause = cause instanceof Error ? { name: cause.name, message: cause.message, stack: cause.stack } : String(cause);
  return JSON.stringify(entry);
}
