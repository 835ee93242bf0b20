import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, formatRate, ProgressDisplay, ProgressTask, renderLine } from '../../lib/client/progress.ts';

const MiB = 1024 * 1024;

function output(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, out: { isTTY, columns: 120, write: (text: string) => writes.push(text) } };
}

describe('progress', () => {
  it('computes rate and ETA from recent samples', () => {
    let now = 0;
    const task = new ProgressTask('abc', 100 * MiB, () => now, () => undefined);
    now = 1000;
    task.update(10 * MiB);
    now = 2000;
    task.update(20 * MiB);
    expect(task.rate()).toBeCloseTo(10 * MiB, -3);
    expect(task.eta()).toBeCloseTo(8, 1);
    expect(renderLine(task, true)).toBe(`abc           [####----------------]  20.0 MiB / 100.0 MiB   10.5 MB/s  ETA 8s`);
    expect(renderLine(task, false)).toBe(`abc            20%  20.0 MiB / 100.0 MiB   10.5 MB/s  ETA 8s`);
    now = 3000;
    task.update(5 * MiB); // resumed from an earlier offset: the rate starts over
    expect(task.rate()).toBe(0);
    expect(task.eta()).toBeUndefined();
  });

  it('redraws bars in place on a TTY, moving the cursor up over the lines drawn last', async () => {
    const { writes, out } = output(true);
    const display = new ProgressDisplay(out);
    const a = display.add('aaaaaaaaaaaa', 10 * MiB);
    display.add('bbbbbbbbbbbb', 5 * MiB);
    await sleep(150);
    a.update(5 * MiB);
    await sleep(150);
    display.stop();
    expect(writes[0]).not.toContain('\x1b[2A');
    expect(writes[0]).toContain('\x1b[2Kaaaaaaaaaaaa  [--------------------]');
    expect(writes[1]!.startsWith('\x1b[2A')).toBe(true);
    expect(writes[1]).toContain('[##########----------]  5.0 MiB / 10.0 MiB');
  });

  it('prints plain lines periodically and when a blob finishes when not a TTY', async () => {
    const { writes, out } = output(false);
    const display = new ProgressDisplay(out, { plainIntervalMs: 50 });
    const task = display.add('cccccccccccc', 2 * MiB);
    task.update(MiB);
    await sleep(120);
    task.finish('exists');
    display.stop();
    expect(writes.some((line) => /^cccccccccccc\s+50%\s+1\.0 MiB \/ 2\.0 MiB/.test(line))).toBe(true);
    expect(writes.at(-1)).toBe('cccccccccccc  exists   2.0 MiB\n');
    expect(writes.join('')).not.toContain('\x1b[');
  });

  it('formats sizes, rates and durations', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(64 * MiB)).toBe('64.0 MiB');
    expect(formatRate(41_200_000)).toBe('41.2 MB/s');
    expect(formatDuration(59.4)).toBe('59s');
    expect(formatDuration(125)).toBe('2m05s');
    expect(formatDuration(7300)).toBe('2h01m');
  });
});
