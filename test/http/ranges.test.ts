import { describe, expect, it } from 'vitest';
import { uploadOffset, uploadRange } from '../../lib/http/ranges.ts';

describe('uploadOffset', () => {
  it('reads an upload\'s Range as the next byte to send', () => {
    expect(uploadOffset('0-1023')).toBe(1024);
    expect(uploadOffset(' 0-4194303 ')).toBe(4194304);
    expect(uploadOffset('bytes=0-9')).toBe(10);
  });

  it('reads absent, empty and `0-0` as 0', () => {
    expect(uploadOffset(undefined)).toBe(0);
    expect(uploadOffset('')).toBe(0);
    expect(uploadOffset('0-0')).toBe(0);
  });

  it('is undefined for anything but 0-<end>', () => {
    for (const header of ['5-9', 'bytes 0-9/10', '0-', '-9', '0-9-10', 'bytes */10', `0-${'9'.repeat(20)}`]) expect(uploadOffset(header), header).toBeUndefined();
  });

  it('inverts uploadRange for every offset past the first byte', () => {
    for (const offset of [0, 2, 1024, 5 * 1024 ** 3]) expect(uploadOffset(uploadRange(offset))).toBe(offset);
  });
});
