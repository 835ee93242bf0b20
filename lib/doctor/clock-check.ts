import { fail, pass, skip, check } from './check.ts';
import { headerValue, showUrl } from './doctor-session.ts';

/** Half the collector's clock tolerance on AWS (lib/storage/dynamodb/dynamodb-metadata-store.ts AWS_CLOCK_TOLERANCE_MS). */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * This machine's clock against the registry's `Date` header (on AWS, the gateway's clock). `ocireg gc --stack` run
 * from here compares the stamps the registry function wrote with this clock, within a 10-minute tolerance; the AWS
 * SDK corrects its own signing clock after a skew error, so a machine far off would still be let in
 * (docs/aws-assumptions.md, "Clocks").
 */
export const clockCheck = check({ id: 'clock', title: "this machine's clock is within 5 minutes of the registry's" }, async (session) => {
  const url = new URL('/v2/', session.base);
  const sent = `GET ${showUrl(url)}, compare Date with this machine's clock`;
  const before = Date.now();
  const response = await session.raw('GET', url);
  const local = (before + Date.now()) / 2;
  const date = headerValue(response.headers, 'date');
  const remote = date === undefined ? Number.NaN : Date.parse(date);
  if (Number.isNaN(remote)) return skip(sent, `Date: ${date ?? '(absent)'}`, 'the registry sends no usable Date header: nothing to compare');
  const skew = Math.round((local - remote) / 1000);
  const observed = `Date: ${date}; this machine is ${Math.abs(skew)} s ${skew >= 0 ? 'ahead' : 'behind'} (1 s resolution)`;
  if (Math.abs(local - remote) > MAX_CLOCK_SKEW_MS + 1000) {
    return fail(sent, observed, 'set this clock right (NTP) before running `ocireg gc --stack` from here: garbage collection trusts clocks to within its tolerance');
  }
  return pass(sent, observed);
});
