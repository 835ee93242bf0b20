import { UsageError } from './command.ts';

/** `30d`, `12h`, `45m`, `3600s` → milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+)([smhd])$/.exec(value);
  if (!match) throw new UsageError(`a duration is a number with s, m, h or d (e.g. 90d), got "${value}"`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
