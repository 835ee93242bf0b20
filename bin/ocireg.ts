#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { serve } from '../lib/server/serve.ts';

const USAGE = `usage: ocireg <command> [options]

commands:
  serve      run the registry on this machine with the filesystem store
             --host <addr>      listen address (default 127.0.0.1)
             --port <n>         listen port (default 5000)
             --data-dir <dir>   where blobs and metadata live (default ./data)
             --tls-cert <file>  serve HTTPS with this PEM certificate (with --tls-key)
             --tls-key <file>   the certificate's PEM private key
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return runServe(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`ocireg: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

async function runServe(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '5000' },
      'data-dir': { type: 'string', default: './data' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`ocireg serve: --port must be an integer from 0 to 65535, got "${values.port}"\n`);
    return 2;
  }
  const running = await serve({
    host: values.host,
    port,
    dataDir: values['data-dir'],
    ...(values['tls-cert'] !== undefined ? { tlsCert: values['tls-cert'] } : {}),
    ...(values['tls-key'] !== undefined ? { tlsKey: values['tls-key'] } : {}),
  });
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg: 'listening', url: running.url, dataDir: values['data-dir'] })}\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg: 'shutting down', signal })}\n`);
      // In-flight requests get 10 s to finish; uploads not completed stay resumable on disk.
      const force = setTimeout(() => {
        running.server.closeAllConnections();
      }, 10_000);
      force.unref();
      running.close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`ocireg: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
