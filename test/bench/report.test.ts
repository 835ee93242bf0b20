import { describe, expect, it } from 'vitest';
import { difference, renderCountsTable } from '../../bench/aws-counts.ts';
import { packageOf } from '../../bench/lambda-bundle.ts';
import { escapeXml, orientedRatio, renderMarkdown, renderRatioSvg, renderTable, summarize, toRows, type Comparison, type Reference } from '../../bench/report.ts';

const sample = (values: number[]) => summarize(values);

const comparisons: Comparison[] = [
  { metric: 'push', unit: 'MB/s', better: 'higher', ocireg: sample([200, 180, 220]), distribution: sample([100, 90, 110]) },
  { metric: 'manifest GET p99', unit: 'ms', better: 'lower', ocireg: sample([40]), distribution: sample([10]) },
  { metric: 'peak RSS <push> & "more"', unit: 'MB', better: 'lower', ocireg: sample([150]), distribution: sample([50]) },
];
const references: Reference[] = [{ metric: 'SHA-256 (openssl)', unit: 'MB/s', value: sample([1000, 1100]) }];

describe('bench report', () => {
  it('summarizes to the median, with min and max, for odd and even counts', () => {
    expect(summarize([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(summarize([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, n: 4 });
    expect(() => summarize([])).toThrow(/at least one value/);
  });

  it('orients ratios so that 1.0 or more means ocireg is as good or better', () => {
    expect(orientedRatio('higher', 200, 100)).toBe(2);
    expect(orientedRatio('lower', 40, 10)).toBe(0.25);
    expect(orientedRatio('lower', 10, 40)).toBe(4);
  });

  it('writes report rows with medians, ranges and the oriented ratio, then reference rows without a ratio', () => {
    const rows = toRows(comparisons, references);
    expect(rows[0]).toEqual({
      metric: 'push',
      unit: 'MB/s',
      ocireg: 200,
      distribution: 100,
      ratio: 2,
      kind: 'comparison',
      better: 'higher',
      range: { ocireg: [180, 220], distribution: [90, 110] },
      samples: 3,
    });
    expect(rows[1]!.ratio).toBe(0.25);
    expect(rows[3]).toMatchObject({ metric: 'SHA-256 (openssl)', kind: 'reference', ocireg: null, distribution: null, ratio: null, value: 1050 });
  });

  it('renders a markdown table that flags losses and lists references separately', () => {
    const rows = toRows(comparisons, references);
    const table = renderTable(rows);
    expect(table).toContain('| push | MB/s | 200 (180–220) | 100 (90–110) | 2.00 |');
    expect(table).toContain('| manifest GET p99 | ms (lower is better) | 40 | 10 | 0.25 ⚠ |');
    expect(table).toContain('| SHA-256 (openssl) | MB/s | 1,050 (1,000–1,100) |');
    const markdown = renderMarkdown(rows, { date: 'D', command: 'npm run bench', machine: 'M', image: 'I', rounds: 3, notes: ['a note'] });
    expect(markdown).toContain('![ratios](ratios.svg)');
    expect(markdown).toContain('- a note');
  });

  it('draws one bar per comparison on a log2 scale from the 1.0 line, colored by win or loss, labels escaped', () => {
    const svg = renderRatioSvg(toRows(comparisons, references));
    const bars = [...svg.matchAll(/<rect class="bar" x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="\d+" fill="(#[0-9a-f]+)"\/>/g)];
    expect(bars).toHaveLength(3);
    const [push, p99, rss] = bars.map((bar) => ({ x: Number(bar[1]), width: Number(bar[2]), fill: bar[3] }));
    // Scale 1/4 .. 4 (log2 -2 .. 2) over 360 px: 90 px per doubling, 1.0 at x = 300 + 180 = 480.
    expect(push).toEqual({ x: 480, width: 90, fill: '#2e7d32' });
    expect(p99).toEqual({ x: 300, width: 180, fill: '#ef6c00' });
    expect(rss!.x + rss!.width).toBeCloseTo(480, 0);
    expect(rss!.width).toBeCloseTo(90 * Math.log2(3), 0);
    expect(svg).toContain('peak RSS &lt;push&gt; &amp; &quot;more&quot;');
    expect(svg).not.toContain('SHA-256');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  });

  it('widens the scale to the next power of two beyond 4 and escapes XML', () => {
    const rows = toRows([{ metric: 'x', unit: 'req/s', better: 'higher', ocireg: sample([7]), distribution: sample([1]) }], []);
    const svg = renderRatioSvg(rows);
    expect(svg).toContain('>8</text>');
    expect(svg).toContain('>1/4</text>');
    expect(svg).toContain('>7.00</text>');
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  });
});

describe('bench AWS counts', () => {
  it('takes the difference of two counter snapshots, dropping unchanged commands', () => {
    const before = { calls: { 'DynamoDB.GetItem': 2, 'S3.PutObject': 1 }, readUnits: 2, writeUnits: 1 };
    const after = { calls: { 'DynamoDB.GetItem': 3, 'S3.PutObject': 1, 'S3.CopyObject': 1 }, readUnits: 3, writeUnits: 1 };
    expect(difference(after, before)).toEqual({ calls: { 'DynamoDB.GetItem': 1, 'S3.CopyObject': 1 }, readUnits: 1, writeUnits: 0 });
  });

  it('renders calls per service with repeat counts', () => {
    const table = renderCountsTable([
      { request: 'manifest PUT', method: 'PUT', status: 201, counts: { calls: { 'DynamoDB.GetItem': 6, 'DynamoDB.TransactWriteItems': 1 }, readUnits: 6, writeUnits: 5 } },
      { request: 'GET /v2/', method: 'GET', status: 200, counts: { calls: {}, readUnits: 0, writeUnits: 0 } },
    ]);
    expect(table).toContain('| manifest PUT | 201 | GetItem ×6, TransactWriteItems | – | 6 | 5 |');
    expect(table).toContain('| GET /v2/ | 200 | – | – | – | – |');
  });

  it('attributes bundle inputs to their package', () => {
    expect(packageOf('node_modules/@aws-sdk/client-s3/dist-es/S3Client.js')).toBe('@aws-sdk/client-s3');
    expect(packageOf('node_modules/jose/dist/node/esm/index.js')).toBe('jose');
    expect(packageOf('lib/http/app.ts')).toBe('lib/http');
  });
});
