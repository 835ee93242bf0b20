import { UsageError } from './command.ts';

/** Sizes as `ocireg policy --quota` takes them and `ocireg usage` prints them: binary units (KiB = 1024 B), or SI (KB = 1000 B). */
const UNITS: Record<string, number> = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };

/** `10GiB`, `500MB`, `1.5TiB`, `4096` → bytes. */
export function parseSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?$/.exec(value);
  const unit = match ? UNITS[match[2] ?? 'B'] : undefined;
  if (!match || unit === undefined || Number(match[1]) <= 0) {
    throw new UsageError(`a size is a positive number with B, KiB, MiB, GiB or TiB (or KB, MB, GB, TB), e.g. 10GiB, got "${value}"`);
  }
  return Math.round(Number(match[1]) * unit);
}

/** Bytes in the largest binary unit that keeps the number at least 1, to three significant digits. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let at = 0;
  let value = bytes;
  while (value >= 1024 && at < units.length - 1) {
    value /= 1024;
    at++;
  }
  return at === 0 ? `${bytes}B` : `${Number(value.toPrecision(3))}${units[at]}`;
}
