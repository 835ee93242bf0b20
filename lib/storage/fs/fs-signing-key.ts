import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TokenSigner } from '../../auth/token-signer.ts';
import type { FsKeys } from './keys.ts';

/**
 * The token signing key of a local registry: created on first start (mode 0600, exclusive create, so two
 * starts cannot end with two keys), then read.
 */
export async function loadOrCreateSigningKey(keys: FsKeys): Promise<string> {
  await mkdir(dirname(keys.signingKey), { recursive: true, mode: 0o700 });
  try {
    const file = await open(keys.signingKey, 'wx', 0o600);
    try {
      await file.writeFile(await TokenSigner.generatePem());
      await file.sync();
    } finally {
      await file.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return readFile(keys.signingKey, 'utf8');
}
