/**
 * The S3 Standard storage price the usage report multiplies by: USD per GB-month, US East (N. Virginia), first
 * 50 TB per month. Source: https://aws.amazon.com/s3/pricing/ ("S3 Standard – General Purpose Storage, First 50 TB /
 * Month, $0.023 per GB"), the list price since December 2016, as known on 2026-11-28 (not re-read online from the
 * build machine). Other regions and tiers differ: `ocireg usage --price-per-gb-month` and the function's
 * `OCIREG_PRICE_PER_GB_MONTH` override it.
 */
export const S3_STANDARD_USD_PER_GB_MONTH = 0.023;

/** AWS bills storage in GB of 2^30 bytes ("GB-Month" in the S3 pricing and Cost and Usage Report). */
const BYTES_PER_GB = 2 ** 30;

/** The monthly cost of keeping `bytes` stored at `pricePerGbMonthUsd`, to a hundredth of a cent. */
export function estimatedMonthlyCostUsd(bytes: number, pricePerGbMonthUsd: number): number {
  return Math.round((bytes / BYTES_PER_GB) * pricePerGbMonthUsd * 10_000) / 10_000;
}
