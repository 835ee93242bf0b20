/**
 * Progress of several uploads on stderr. On a TTY, one bar per blob, redrawn in place (cursor up over the block
 * drawn last, then every line cleared and rewritten) at most 10 times a second; elsewhere (CI logs, pipes), one
 * plain line per active blob every few seconds and one when each finishes.
 *
 * ```
 * 3f4a5b6c7d8e  [##########----------]  32.0 MiB / 64.0 MiB   41.2 MB/s  ETA 1s
 * 9a8b7c6d5e4f  exists                  12.3 MiB
 * ```
 */

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Redraw in place (default: the output's isTTY). */
  tty?: boolean;
  /** Period of plain lines when not a TTY (default 5 s). */
  plainIntervalMs?: number;
  now?: () => number;
}

interface Sample {
  at: number;
  bytes: number;
}

/** One blob's upload. */
export class ProgressTask {
  readonly label: string;
  readonly total: number;
  bytes = 0;
  status: string | undefined;
  readonly startedAt: number;
  finishedAt: number | undefined;
  readonly #samples: Sample[] = [];
  readonly #now: () => number;
  readonly #changed: () => void;

  constructor(label: string, total: number, now: () => number, changed: () => void) {
    this.label = label;
    this.total = total;
    this.#now = now;
    this.#changed = changed;
    this.startedAt = now();
    this.#samples.push({ at: this.startedAt, bytes: 0 });
  }

  update(bytes: number): void {
    this.bytes = Math.min(bytes, this.total);
    const at = this.#now();
    const last = this.#samples[this.#samples.length - 1]!;
    if (bytes < last.bytes) this.#samples.length = 0; // resumed from an earlier offset: rates start over
    if (this.#samples.length > 0 && at - last.at < 100) this.#samples[this.#samples.length - 1] = { at: last.at, bytes };
    else this.#samples.push({ at, bytes });
    while (this.#samples.length > 2 && at - this.#samples[0]!.at > 5_000) this.#samples.shift();
    this.#changed();
  }

  /** Marks the task finished with a word such as `pushed`, `exists`, `mounted` or `failed`. */
  finish(status: string): void {
    this.status = status;
    this.finishedAt = this.#now();
    if (status !== 'failed') this.bytes = this.total;
    this.#changed();
  }

  /** Bytes per second over the last few seconds (over the whole upload once finished). */
  rate(): number {
    if (this.finishedAt !== undefined) {
      const seconds = (this.finishedAt - this.startedAt) / 1000;
      return seconds > 0 ? this.total / seconds : 0;
    }
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || !last || last.at <= first.at) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }

  /** Seconds left at the current rate, or undefined when unknown. */
  eta(): number | undefined {
    const rate = this.rate();
    return rate > 0 && this.finishedAt === undefined ? (this.total - this.bytes) / rate : undefined;
  }
}

export class ProgressDisplay {
  readonly #out: ProgressOutput;
  readonly #tty: boolean;
  readonly #now: () => number;
  readonly #tasks: ProgressTask[] = [];
  readonly #timer: NodeJS.Timeout | undefined;
  #drawnLines = 0;
  #dirty = false;
  #stopped = false;

  constructor(out: ProgressOutput, options: ProgressOptions = {}) {
    this.#out = out;
    this.#tty = options.tty ?? out.isTTY === true;
    this.#now = options.now ?? Date.now;
    const interval = this.#tty ? 100 : (options.plainIntervalMs ?? 5_000);
    this.#timer = setInterval(() => this.#tick(), interval);
    this.#timer.unref();
  }

  add(label: string, total: number): ProgressTask {
    const task = new ProgressTask(label, total, this.#now, () => this.#onChange(task));
    this.#tasks.push(task);
    this.#dirty = true;
    return task;
  }

  /** A message above the bars (a retry, a warning). */
  note(message: string): void {
    if (this.#tty) {
      this.#clear();
      this.#out.write(`${message}\n`);
      this.#drawnLines = 0;
      this.#draw();
    } else {
      this.#out.write(`${message}\n`);
    }
  }

  /** Draws the final state and stops the timer. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    if (this.#tty) this.#draw();
  }

  #onChange(task: ProgressTask): void {
    this.#dirty = true;
    if (!this.#tty && task.status !== undefined) this.#out.write(`${renderLine(task, false)}\n`);
  }

  #tick(): void {
    if (this.#tty) {
      if (this.#dirty) this.#draw();
      return;
    }
    for (const task of this.#tasks) if (task.status === undefined && task.bytes > 0) this.#out.write(`${renderLine(task, false)}\n`);
  }

  #clear(): void {
    if (this.#drawnLines > 0) this.#out.write(`\x1b[${this.#drawnLines}A`);
    for (let i = 0; i < this.#drawnLines; i++) this.#out.write('\x1b[2K\n');
    if (this.#drawnLines > 0) this.#out.write(`\x1b[${this.#drawnLines}A`);
  }

  #draw(): void {
    this.#dirty = false;
    let text = this.#drawnLines > 0 ? `\x1b[${this.#drawnLines}A` : '';
    const width = this.#out.columns || 100;
    for (const task of this.#tasks) text += `\x1b[2K${renderLine(task, true).slice(0, Math.max(20, width - 1))}\n`;
    this.#out.write(text);
    this.#drawnLines = this.#tasks.length;
  }
}

/** One task as text: a bar on a TTY, `label  12.0 MiB / 64.0 MiB  18%  …` otherwise. */
export function renderLine(task: ProgressTask, bar: boolean): string {
  const label = task.label.padEnd(12);
  if (task.status !== undefined) {
    const seconds = ((task.finishedAt ?? task.startedAt) - task.startedAt) / 1000;
    const speed = task.status === 'pushed' && seconds > 0 && task.total >= 1024 * 1024 ? `  in ${formatDuration(seconds)}, ${formatRate(task.rate())}` : '';
    return `${label}  ${task.status.padEnd(bar ? 22 : 7)}  ${formatBytes(task.total)}${speed}`;
  }
  const fraction = task.total > 0 ? task.bytes / task.total : 1;
  const eta = task.eta();
  const numbers = `${formatBytes(task.bytes)} / ${formatBytes(task.total)}  ${formatRate(task.rate()).padStart(10)}  ETA ${eta === undefined ? '--' : formatDuration(eta)}`;
  if (!bar) return `${label}  ${String(Math.floor(fraction * 100)).padStart(3)}%  ${numbers}`;
  const filled = Math.round(fraction * 20);
  return `${label}  [${'#'.repeat(filled)}${'-'.repeat(20 - filled)}]  ${numbers}`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Decimal megabytes per second, as network speeds are usually quoted. */
export function formatRate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1_000_000).toFixed(1)} MB/s`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}
