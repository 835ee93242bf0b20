/**
 * S3's multipart limits, as the strict layer enforces them.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
 */

export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_NUMBER = 10_000;
