import { parseArgs } from 'node:util';
import { serve } from '../server/serve.ts';
import { parseEventFilter } from '../registry/events.ts';
import type { WebhookTarget } from '../server/webhook-sink.ts';
import { parseDuration, positiveDuration } from './duration.ts';
import { UsageError, type Command } from './command.ts';
import { runUntilSignal } from './until-signal.ts';

export const usage = `serve      run the registry on this machine with the filesystem store
             --host <addr>             listen address (default 127.0.0.1)
             --port <n>                listen port (default 5000)
             --data-dir <dir>          where blobs and metadata live (default ./data)
             --tls-cert <file>         serve HTTPS with this PEM certificate (with --tls-key)
             --tls-key <file>          the certificate's PEM private key
             --tls-client-ca <file>    mutual TLS: require a client certificate signed by this PEM CA
                                       (docker: certs.d/<host:port>/client.cert and client.key)
             --auth                    require docker login (token auth; managed with the users, tokens,
                                       grants, teams, repos and trust commands)
             --cache-revalidate <d>    serve a pull-through cache's tag this long before asking the upstream
                                       again with a HEAD (default 5m; e.g. 30s, 1h; see ocireg cache)
             --max-chunk-length <n>    refuse request bodies over n bytes (413) and advertise
                                       OCI-Chunk-Max-Length, as the AWS deployment does
             --webhook <url>           POST every event there (repeatable; docs/events.md), asynchronously,
                                       retried with backoff for 5 minutes while the receiver is down
             --webhook-secret <s>      sign the preceding --webhook's bodies: X-Ocireg-Signature-256
             --webhook-events <kinds>  the preceding --webhook gets only these: push,tag,delete,gc
             --gc-every <duration>     collect garbage this often (e.g. 1d, 6h; off by default)
             --gc-grace <duration>     the grace period of those runs (default 24h)`;

export const run: Command = async (args) => {
  const { values, tokens } = parseArgs({
    tokens: true,
    args,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '5000' },
      'data-dir': { type: 'string', default: './data' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-client-ca': { type: 'string' },
      'max-chunk-length': { type: 'string' },
      'cache-revalidate': { type: 'string' },
      auth: { type: 'boolean', default: false },
      webhook: { type: 'string', multiple: true },
      'webhook-secret': { type: 'string', multiple: true },
      'webhook-events': { type: 'string', multiple: true },
      'gc-every': { type: 'string' },
      'gc-grace': { type: 'string' },
    },
    strict: true,
  });
  const port = integerOption('--port', values.port, 0, 65535);
  const maxChunkLength = values['max-chunk-length'] === undefined ? undefined : integerOption('--max-chunk-length', values['max-chunk-length'], 1, Number.MAX_SAFE_INTEGER);
  const running = await serve({
    host: values.host,
    port,
    dataDir: values['data-dir'],
    auth: values.auth,
    ...(values['tls-cert'] !== undefined ? { tlsCert: values['tls-cert'] } : {}),
    ...(values['tls-key'] !== undefined ? { tlsKey: values['tls-key'] } : {}),
    ...(values['tls-client-ca'] !== undefined ? { tlsClientCa: values['tls-client-ca'] } : {}),
    ...(maxChunkLength !== undefined ? { maxChunkLength } : {}),
    webhooks: webhookTargets(tokens ?? []),
    ...(values['cache-revalidate'] !== undefined ? { cacheRevalidateMs: parseDuration(values['cache-revalidate']) } : {}),
    ...(values['gc-every'] !== undefined ? { gcEveryMs: positiveDuration('--gc-every', values['gc-every']) } : {}),
    ...(values['gc-grace'] !== undefined ? { gcGraceMs: parseDuration(values['gc-grace']) } : {}),
  });
  const log = (entry: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', ...entry })}\n`);
  log({ msg: 'listening', url: running.url, dataDir: values['data-dir'], auth: values.auth });
  process.on('uncaughtException', (error) => {
    // A bug must cost one request, not the registry: log it and keep serving.
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'uncaught exception', error: String(error?.stack ?? error) })}\n`);
  });
  await runUntilSignal(running, log);
  return 0;
};

/** Each --webhook-secret and --webhook-events applies to the --webhook before it. */
function webhookTargets(tokens: Array<{ kind: string; name?: string; value?: string | undefined }>): WebhookTarget[] {
  const targets: WebhookTarget[] = [];
  for (const token of tokens) {
    if (token.kind !== 'option' || token.value === undefined) continue;
    if (token.name === 'webhook') {
      try {
        new URL(token.value);
      } catch {
        throw new UsageError(`--webhook takes a URL, got "${token.value}"`);
      }
      targets.push({ url: token.value });
      continue;
    }
    if (token.name !== 'webhook-secret' && token.name !== 'webhook-events') continue;
    const target = targets.at(-1);
    if (!target) throw new UsageError(`--${token.name} applies to the --webhook before it; give --webhook <url> first`);
    if (token.name === 'webhook-secret') target.secret = token.value;
    else {
      try {
        target.events = parseEventFilter(token.value);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    }
  }
  return targets;
}

export function integerOption(flag: string, value: string, min: number, max: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < min || number > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return number;
}
