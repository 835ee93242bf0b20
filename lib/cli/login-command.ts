import { parseArgs } from 'node:util';
import { storeDockerCredentials } from '../client/docker-credentials.ts';
import { RegistryClient } from '../client/registry-client.ts';
import { UsageError, type Command } from './command.ts';
import { registryBase } from './doctor-command.ts';

export const usage = `login      check credentials against a registry and store them where docker login does
             (~/.docker/config.json, or docker's credsStore/credHelpers), for docker and ocireg push alike
             ocireg login <registry> -u <user> (--password-stdin | -p <password>)
             --plain-http              HTTP even for a host other than localhost/127.0.0.1`;

export const run: Command = async (args) => {
  const { values, positionals } = parseArgs({
    args,
    options: {
      username: { type: 'string', short: 'u' },
      password: { type: 'string', short: 'p' },
      'password-stdin': { type: 'boolean', default: false },
      'plain-http': { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError(`expected one <registry>, got ${positionals.length} argument(s)`);
  if (values.username === undefined || values.username === '') throw new UsageError('give the user name with -u <user>');
  if (values['password-stdin'] === (values.password !== undefined)) throw new UsageError('give the password (or access token) with exactly one of --password-stdin and -p');
  const password = values['password-stdin'] ? (await readStdin()).replace(/\r?\n$/, '') : values.password!;
  if (password === '') throw new UsageError('the password is empty');
  const base = registryBase(positionals[0]!, values['plain-http']);
  const credentials = { username: values.username, password };

  // The same exchange as `docker login`: GET /v2/, answer its challenge at the token endpoint, GET /v2/ again.
  const client = new RegistryClient({ registry: base.host, plainHttp: base.protocol === 'http:', credentials, userAgent: 'ocireg-login' });
  try {
    await client.ping();
  } catch (error) {
    process.stderr.write(`ocireg login: ${base.host} refused the credentials of ${values.username}: ${(error as Error).message}\n`);
    return 1;
  } finally {
    client.transport.close();
  }
  const where = await storeDockerCredentials(base.host, credentials);
  process.stderr.write(`Login Succeeded: credentials for ${base.host} stored in ${where}\n`);
  return 0;
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
