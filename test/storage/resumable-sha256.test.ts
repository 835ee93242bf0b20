import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ResumableSha256 } from '../../lib/storage/s3/resumable-sha256.ts';

describe('ResumableSha256', () => {
  it('gives node:crypto’s digest when the bytes arrive across saved and resumed states', async () => {
    // Prepare
    const content = randomBytes(1_000_003);
    const cuts = [0, 1, 63, 64, 65, 500_000, 999_999, content.byteLength];
    // Act: one fresh hasher per piece, only the saved string carried over
    let saved = (await ResumableSha256.resume()).save();
    for (let index = 1; index < cuts.length; index++) {
      const hash = await ResumableSha256.resume(JSON.parse(JSON.stringify(saved)) as string);
      saved = hash.update(content.subarray(cuts[index - 1], cuts[index])).save();
    }
    // Assess
    expect((await ResumableSha256.resume(saved)).hex()).toBe(createHash('sha256').update(content).digest('hex'));
    expect(saved.length).toBeLessThan(200);
  });

  it('hashes the empty input', async () => {
    expect((await ResumableSha256.resume()).hex()).toBe(createHash('sha256').digest('hex'));
  });

  it('refuses a corrupt saved state instead of hashing from a wrong start', async () => {
    const saved = (await ResumableSha256.resume()).update(randomBytes(100)).save();
    const corrupt = Buffer.from(saved, 'base64');
    corrupt[0] = corrupt[0]! ^ 0xff;
    await expect(ResumableSha256.resume(corrupt.toString('base64'))).rejects.toThrow(/corrupt/);
  });
});
