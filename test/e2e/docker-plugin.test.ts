import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCliOutsideRepository, type BuiltCli } from '../support/built-cli.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { fetchManifest, MiB, randomTarball } from '../support/images.ts';
import { startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { describeFailure, requireTools, runTool, type RunResult } from '../support/tools.ts';

/**
 * The real docker CLI with the built CLI's plugin: `ocireg install-docker-plugin` into dockerd's DOCKER_CONFIG, then
 * `docker ocireg push` of a local image to an `ocireg serve --auth` registry with the credentials `ocireg login`
 * stored, and `docker pull` with the same stored credentials, once under `auths` and once through a credential
 * helper (`credsStore`).
 */

let work: string;
let built: BuiltCli;
let server: RegistryServer;
let dockerd: Dockerd;
let token: string;
let tarball: { path: string; digest: string; size: number };

const ok = (result: RunResult) => {
  expect(result.code, `${describeFailure(result)}\ndockerd log tail:\n${dockerd?.log().slice(-3000)}`).toBe(0);
  return result;
};
/** The built CLI as a user runs it, with the docker config `config` (dockerd's own by default). */
const cli = (args: string[], options: { input?: string; config?: string } = {}) =>
  runTool(built.node, [built.cli, ...args], {
    cwd: built.dir,
    timeoutMs: 180_000,
    env: { ...dockerd.env, DOCKER_CONFIG: options.config ?? dockerd.env.DOCKER_CONFIG },
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
const docker = (args: string[], env: NodeJS.ProcessEnv = {}) => dockerd.docker(args, { timeoutMs: 180_000, env });
const imageId = async (ref: string, env: NodeJS.ProcessEnv = {}) => ok(await docker(['image', 'inspect', '--format', '{{.Id}}', ref], env)).stdout.trim();

beforeAll(async () => {
  await requireTools('docker', 'dockerd', 'tar', 'jq');
  work = await mkdtemp(join(tmpdir(), 'ocireg-plugin-'));
  built = await buildCliOutsideRepository();
  server = await startRegistryServer({ serveArgs: ['--auth'] });
  dockerd = await startDockerd({ insecureRegistries: [server.host] });
  ok(await cli(['users', 'add', 'alice', '--admin', '--data-dir', server.dataDir]));
  token = ok(await cli(['tokens', 'create', 'alice', '--data-dir', server.dataDir])).stdout.trim();
  tarball = await randomTarball(join(work, 'payload.tar'), 3 * MiB);
  ok(await docker(['import', tarball.path, 'plug/local:src']));
}, 300_000);

afterAll(async () => {
  await dockerd?.stop();
  await server?.stop();
  if (built) await rm(built.dir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('docker ocireg: the CLI plugin with the real docker CLI', () => {
  it('installs the plugin where docker finds it, and docker lists and runs it', async () => {
    // Act
    ok(await cli(['install-docker-plugin']));
    const help = await docker(['--help']);
    const info = await docker(['info', '--format', '{{json .ClientInfo.Plugins}}']);
    const pluginHelp = await docker(['ocireg', '--help']);

    // Assess
    expect(help.stdout).toMatch(/^\s+ocireg\*?\s+Push images in chunks/m);
    const plugins = JSON.parse(ok(info).stdout) as Array<{ Name: string; Vendor: string; Err?: unknown }>;
    expect(plugins.find((plugin) => plugin.Name === 'ocireg')).toMatchObject({ Name: 'ocireg', Vendor: 'ocireg' });
    expect(plugins.find((plugin) => plugin.Name === 'ocireg')?.Err).toBeUndefined();
    expect(ok(pluginHelp).stdout + pluginHelp.stderr).toMatch(/install-docker-plugin/);
  });

  it('pushes a local image with the credentials ocireg login stored; docker pulls it back with them, same image ID', async () => {
    // Prepare
    const ref = `${server.host}/plug/app:1`;
    const id = await imageId('plug/local:src');
    ok(await cli(['login', server.host, '-u', 'alice', '--password-stdin'], { input: `${token}\n` }));

    // Act
    const push = await docker(['ocireg', 'push', '--plain-http', '--quiet', '--chunk-size', String(MiB), 'plug/local:src', ref]);
    const anonymous = await fetch(`${server.url}/v2/plug/app/manifests/1`);
    const pull = await docker(['pull', ref]);

    // Assess
    ok(push);
    expect(push.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(anonymous.status).toBe(401);
    ok(pull);
    expect(pull.stdout).toMatch(/Downloaded newer image/);
    expect(await imageId(ref)).toBe(id);
    const patches = server.requests().filter((line) => line.name === 'plug/app' && line.operation === 'upload.patch');
    expect(patches.length).toBeGreaterThanOrEqual(3);
  });

  it('stores through docker credsStore helper with ocireg login, and docker pull reads through it', async () => {
    // Prepare: a second docker config with credsStore "fake", and docker-credential-fake on PATH keeping a JSON file.
    const config = join(work, 'helper-config');
    const bin = join(work, 'bin');
    const store = join(work, 'fake-creds.json');
    await mkdir(config, { recursive: true });
    await mkdir(bin, { recursive: true });
    await writeFile(join(config, 'config.json'), JSON.stringify({ credsStore: 'fake' }));
    await writeFile(join(bin, 'docker-credential-fake'), fakeCredentialHelper(store));
    await chmod(join(bin, 'docker-credential-fake'), 0o755);
    const env = { DOCKER_CONFIG: config, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` };
    const ref = `${server.host}/plug/app:1`;
    const id = await imageId(ref);
    ok(await docker(['rmi', ref]));

    // Act
    const login = await runTool(built.node, [built.cli, 'login', server.host, '-u', 'alice', '--password-stdin'], { cwd: built.dir, input: `${token}\n`, env: { ...dockerd.env, ...env }, timeoutMs: 60_000 });
    const pull = await docker(['pull', ref], env);

    // Assess
    ok(login);
    const stored = JSON.parse(await readFile(store, 'utf8')) as Record<string, { Username: string; Secret: string }>;
    expect(stored[server.host]).toMatchObject({ Username: 'alice', Secret: token });
    expect(JSON.parse(await readFile(join(config, 'config.json'), 'utf8'))).toEqual({ credsStore: 'fake' });
    ok(pull);
    expect(await imageId(ref, env)).toBe(id);
    expect((await fetchManifest(server.url, 'plug/app', '1')).status).toBe(401);
  });
});

/** `docker-credential-fake`: the credential helper protocol (store/get/erase/list) over one JSON file, with jq. */
function fakeCredentialHelper(store: string): string {
  const file = `'${store}'`;
  return `#!/bin/sh
set -e
[ -f ${file} ] || echo '{}' > ${file}
case "$1" in
  store) entry=$(cat); jq --argjson e "$entry" '.[$e.ServerURL] = $e' ${file} > ${file}.tmp; mv ${file}.tmp ${file} ;;
  get) url=$(cat); jq -e --arg u "$url" '.[$u]' ${file} || { echo "credentials not found in native keychain"; exit 1; } ;;
  erase) url=$(cat); jq --arg u "$url" 'del(.[$u])' ${file} > ${file}.tmp; mv ${file}.tmp ${file} ;;
  list) jq 'map_values(.Username)' ${file} ;;
  *) exit 1 ;;
esac
`;
}
