import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon } from './daemon.ts';
import { runTool, type RunOptions, type RunResult } from './tools.ts';

/**
 * A private containerd for one suite: root, state and the gRPC socket under a short temp dir, the CRI plugin off
 * (nothing here runs Kubernetes), content isolated per namespace, and `ctr` bound to its socket.
 */

export interface Containerd {
  /** The gRPC socket path. */
  address: string;
  pid: number;
  /** Runs `ctr --address SOCKET --namespace NS …args` (namespace default `e2e`). */
  ctr(args: string[], options?: RunOptions & { namespace?: string }): Promise<RunResult>;
  /** containerd's stderr so far (the last 256 KiB). */
  log(): string;
  /** SIGTERM by PID (SIGKILL after 10 s), kills leftover shims, removes its directories. */
  stop(): Promise<void>;
}

export async function startContainerd(options: { readyTimeoutMs?: number } = {}): Promise<Containerd> {
  const dir = await mkdtemp('/tmp/oct-');
  const address = join(dir, 'c.sock');
  const configPath = join(dir, 'config.toml');
  await writeFile(
    configPath,
    [
      'version = 2',
      `root = ${JSON.stringify(join(dir, 'root'))}`,
      `state = ${JSON.stringify(join(dir, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(address)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(join(dir, 't.sock'))}`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      // Namespaces do not share content: a pull into a fresh namespace downloads every blob again.
      '[plugins."io.containerd.metadata.v1.bolt"]',
      '  content_sharing_policy = "isolated"',
      '',
    ].join('\n'),
  );
  const ctr = (args: string[], runOptions: RunOptions & { namespace?: string } = {}) => {
    const { namespace = 'e2e', ...rest } = runOptions;
    return runTool('ctr', ['--address', address, '--namespace', namespace, ...args], { timeoutMs: 180_000, ...rest });
  };
  const daemon = await startDaemon({
    name: 'containerd',
    args: ['--config', configPath],
    dir,
    ready: async () => (await ctr(['version'], { timeoutMs: 10_000 })).code === 0,
    readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
    readyIntervalMs: 200,
    stopGraceMs: 10_000,
  });
  return { address, pid: daemon.pid, ctr, log: daemon.log, stop: daemon.stop };
}
