/**
 * The bench's results as data, markdown and an SVG bar chart: pure functions, no I/O (bench/run.ts writes the files).
 *
 * Every ratio is oriented so that ≥ 1.0 means ocireg is as good as Distribution or better:
 * ocireg / distribution when higher is better (MB/s, req/s), distribution / ocireg when lower is better (ms, MB).
 */

export type Better = 'higher' | 'lower';

/** Repeated measurements of one metric on one registry. */
export interface Sample {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** One metric measured on both registries. */
export interface Comparison {
  metric: string;
  unit: string;
  better: Better;
  ocireg: Sample;
  distribution: Sample;
}

/** A physical limit of the machine, measured once per round (not a registry). */
export interface Reference {
  metric: string;
  unit: string;
  value: Sample;
}

/** A row of report.json. `ocireg`, `distribution` and `ratio` are null on reference rows, which carry `value`. */
export interface ReportRow {
  metric: string;
  unit: string;
  ocireg: number | null;
  distribution: number | null;
  ratio: number | null;
  kind: 'comparison' | 'reference';
  better?: Better;
  range?: { ocireg?: [number, number]; distribution?: [number, number]; value?: [number, number] };
  samples?: number;
  value?: number;
}

export interface ReportMeta {
  date: string;
  command: string;
  machine: string;
  image: string;
  rounds: number;
  notes: string[];
}

export function summarize(values: number[]): Sample {
  if (values.length === 0) throw new Error('summarize needs at least one value, got none');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, n: sorted.length };
}

/** ≥ 1 means ocireg is as good or better. */
export function orientedRatio(better: Better, ocireg: number, distribution: number): number {
  return better === 'higher' ? ocireg / distribution : distribution / ocireg;
}

export function toRows(comparisons: Comparison[], references: Reference[]): ReportRow[] {
  const rows: ReportRow[] = comparisons.map((c) => ({
    metric: c.metric,
    unit: c.unit,
    ocireg: round(c.ocireg.median),
    distribution: round(c.distribution.median),
    ratio: round(orientedRatio(c.better, c.ocireg.median, c.distribution.median), 3),
    kind: 'comparison',
    better: c.better,
    range: { ocireg: [round(c.ocireg.min), round(c.ocireg.max)], distribution: [round(c.distribution.min), round(c.distribution.max)] },
    samples: Math.min(c.ocireg.n, c.distribution.n),
  }));
  for (const r of references) {
    rows.push({
      metric: r.metric,
      unit: r.unit,
      ocireg: null,
      distribution: null,
      ratio: null,
      kind: 'reference',
      value: round(r.value.median),
      range: { value: [round(r.value.min), round(r.value.max)] },
      samples: r.value.n,
    });
  }
  return rows;
}

/** Three significant digits, at most `digits` decimals: stable across runs, readable in a table. */
export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const magnitude = Math.abs(value) >= 100 ? 0 : digits;
  const factor = 10 ** magnitude;
  return Math.round(value * factor) / factor;
}

function formatValue(value: number | null | undefined, range: [number, number] | undefined): string {
  if (value === null || value === undefined) return '–';
  const text = value.toLocaleString('en-US', { maximumFractionDigits: 2 });
  if (!range || range[0] === range[1]) return text;
  return `${text} (${range[0].toLocaleString('en-US', { maximumFractionDigits: 2 })}–${range[1].toLocaleString('en-US', { maximumFractionDigits: 2 })})`;
}

/** The comparison table alone (also what docs/performance.md embeds). */
export function renderTable(rows: ReportRow[]): string {
  const lines = ['| metric | unit | ocireg | Distribution | ratio |', '| --- | --- | ---: | ---: | ---: |'];
  for (const row of rows.filter((r) => r.kind === 'comparison')) {
    const mark = row.ratio !== null && row.ratio >= 1 ? '' : ' ⚠';
    const direction = row.better === 'lower' ? ' (lower is better)' : '';
    lines.push(
      `| ${row.metric} | ${row.unit}${direction} | ${formatValue(row.ocireg, row.range?.ocireg)} | ${formatValue(row.distribution, row.range?.distribution)} | ${row.ratio?.toFixed(2)}${mark} |`,
    );
  }
  const references = rows.filter((r) => r.kind === 'reference');
  if (references.length > 0) {
    lines.push('', '| physical reference (same bytes, same disk) | unit | value |', '| --- | --- | ---: |');
    for (const row of references) lines.push(`| ${row.metric} | ${row.unit} | ${formatValue(row.value, row.range?.value)} |`);
  }
  return lines.join('\n');
}

export function renderMarkdown(rows: ReportRow[], meta: ReportMeta): string {
  return [
    '# ocireg vs CNCF Distribution: benchmark report',
    '',
    `${meta.date} · ${meta.machine} · image: ${meta.image} · ${meta.rounds} interleaved round(s) per registry`,
    '',
    `Command: \`${meta.command}\``,
    '',
    'Values are medians, (min–max) over the rounds. **ratio ≥ 1.0 means ocireg is as good as Distribution or better**',
    '(ocireg/Distribution for throughput and requests/s; Distribution/ocireg for latency and memory). ⚠ marks a loss.',
    '',
    renderTable(rows),
    '',
    '![ratios](ratios.svg)',
    '',
    ...meta.notes.map((note) => `- ${note}`),
    '',
  ].join('\n');
}

const SVG = { width: 760, rowHeight: 26, labelWidth: 300, barWidth: 360, top: 44, bottom: 30 };

/**
 * Horizontal bars of the ratios on a log₂ scale, growing from the 1.0 line: right and green where ocireg is as good
 * or better, left and orange where it loses (a 2× win and a 2× loss are bars of the same length). Hand-written SVG.
 */
export function renderRatioSvg(rows: ReportRow[], title = 'ocireg vs Distribution (ratio ≥ 1.0: ocireg as good or better)'): string {
  const bars = rows.filter((r) => r.kind === 'comparison' && r.ratio !== null && Number.isFinite(r.ratio) && r.ratio > 0);
  const ratios = bars.map((r) => r.ratio!);
  const low = Math.min(-2, Math.floor(Math.log2(Math.min(...ratios, 1))));
  const high = Math.max(2, Math.ceil(Math.log2(Math.max(...ratios, 1))));
  const x = (ratio: number) => SVG.labelWidth + ((Math.log2(ratio) - low) / (high - low)) * SVG.barWidth;
  const height = SVG.top + bars.length * SVG.rowHeight + SVG.bottom;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${SVG.width}" height="${height}" viewBox="0 0 ${SVG.width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${SVG.width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  for (let power = low; power <= high; power++) {
    const tx = x(2 ** power).toFixed(1);
    parts.push(`<line x1="${tx}" y1="${SVG.top - 6}" x2="${tx}" y2="${height - SVG.bottom}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${tx}" y="${height - SVG.bottom + 16}" text-anchor="middle" fill="#555">${formatTick(2 ** power)}</text>`);
  }
  const one = x(1);
  bars.forEach((row, i) => {
    const y = SVG.top + i * SVG.rowHeight;
    const ratio = row.ratio!;
    const end = x(ratio);
    const win = ratio >= 1;
    const left = Math.min(one, end);
    const width = Math.abs(end - one);
    parts.push(`<text x="${SVG.labelWidth - 8}" y="${y + 15}" text-anchor="end">${escapeXml(row.metric)}</text>`);
    parts.push(`<rect class="bar" x="${left.toFixed(1)}" y="${y + 4}" width="${width.toFixed(1)}" height="${SVG.rowHeight - 8}" fill="${win ? '#2e7d32' : '#ef6c00'}"/>`);
    const labelX = win ? end + 6 : one + 6;
    parts.push(`<text x="${labelX.toFixed(1)}" y="${y + 15}">${ratio.toFixed(2)}</text>`);
  });
  parts.push(`<line x1="${one.toFixed(1)}" y1="${SVG.top - 6}" x2="${one.toFixed(1)}" y2="${height - SVG.bottom}" stroke="#000" stroke-dasharray="4 3"/>`);
  parts.push('</svg>', '');
  return parts.join('\n');
}

function formatTick(value: number): string {
  return value >= 1 ? String(value) : `1/${1 / value}`;
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}
