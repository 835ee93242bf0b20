import { parseArgs } from 'node:util';
import { startPushProxy } from '../proxy/push-proxy.ts';
import { runUntilSignal } from './until-signal.ts';
import { UsageError, type Command } from './command.ts';
import { integerOption } from './serve-command.ts';

export const usage = `proxy      a local registry address that forwards to a deployed one and splits large uploads into
             chunks it accepts, so unmodified docker/containerd/skopeo push layers of any size
             --upstream <url>          the registry to forward to (https://… or http://127.0.0.1:5000)
             --host <addr>             listen address (default 127.0.0.1)
             --port <n>                listen port (default 5000)
             --chunk-size <n>          chunk size when the upstream advertises no OCI-Chunk-Max-Length
                                       (default 4194304)`;

export const run: Command = async (args) => {
  const { values } = parseArgs({
    args,
    options: {
      upstream: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '5000' },
      'chunk-size': { type: 'string' },
    },
    strict: true,
  });
  if (values.upstream === undefined) throw new UsageError('--upstream is required, e.g. --upstream https://registry.example.com');
  const port = integerOption('--port', values.port, 0, 65535);
  const chunkSize = values['chunk-size'] === undefined ? undefined : integerOption('--chunk-size', values['chunk-size'], 1024, 5 * 1024 * 1024 * 1024);
  const log = (entry: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', ...entry })}\n`);
  let running;
  try {
    running = await startPushProxy({
      upstream: values.upstream,
      host: values.host,
      port,
      ...(chunkSize !== undefined ? { defaultChunkSize: chunkSize } : {}),
      log: (entry) => log({ msg: 'request', ...entry }),
    });
  } catch (error) {
    if (error instanceof Error && /--upstream/.test(error.message)) throw new UsageError(error.message);
    throw error;
  }
  log({ msg: 'listening', url: running.url, upstream: values.upstream });
  await runUntilSignal(running, log);
  return 0;
};
