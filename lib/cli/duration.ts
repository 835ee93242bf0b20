import { UsageError } from './command.ts';

/** Durations as the CLI takes them (`--expires 30d`, `--gc-every 6h`) and prints them (`policy list`). */

/** `30d`, `12h`, `45m`, `3600s` → milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+)([smhd])$/.exec(value);
  if (!match) throw new UsageError(`a duration is a number with s, m, h or d (e.g. 90d), got "${value}"`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

/** A duration option that must be longer than 0 (`--gc-every`, `--expire-after`), in milliseconds. */
export function positiveDuration(flag: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === 0) throw new UsageError(`${flag} must be longer than 0, got "${value}"`);
  return ms;
}

/** Milliseconds as the largest whole unit of d, h, m, s that divides them (`7d`, `36h`). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${Math.round(ms / 1000)}s`;
}
