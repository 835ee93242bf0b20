import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { descendants, isRunning, killLeftovers, runTool, stopChild, trackChild, waitFor, type RunOptions, type RunResult } from './tools.ts';

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
  const child = spawn('containerd', ['--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid === undefined) {
    await new Promise((resolve) => child.once('error', resolve));
    await rm(dir, { recursive: true, force: true });
    throw new Error('could not start containerd');
  }
  const pid = child.pid;
  trackChild(child);
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-256 * 1024);
  });

  const ctr = (args: string[], runOptions: RunOptions & { namespace?: string } = {}) => {
    const { namespace = 'e2e', ...rest } = runOptions;
    return runTool('ctr', ['--address', address, '--namespace', namespace, ...args], { timeoutMs: 180_000, ...rest });
  };

  const stop = async () => {
    const leftovers = isRunning(child) ? await descendants(pid) : [];
    await stopChild(child, 10_000);
    await killLeftovers(leftovers);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };

  const exitedEarly = () => (isRunning(child) ? undefined : `it exited (${child.exitCode ?? child.signalCode})`);
  try {
    await waitFor(async () => (await ctr(['version'], { timeoutMs: 10_000 })).code === 0, 'containerd to answer on its socket', options.readyTimeoutMs ?? 30_000, 200, exitedEarly);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\ncontainerd log:\n${log}`);
  }
  return { address, pid, ctr, log: () => log, stop };
}
