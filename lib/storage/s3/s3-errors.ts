/**
 * S3 errors by name, for translation at the adapter boundary (the core never sees an SDK error).
 * The SDK names a service error by S3's error code (`NoSuchKey`, `NoSuchUpload`, `InvalidPart`…), and a HEAD
 * that found nothing `NotFound`, since a HEAD response has no body to carry a code.
 */
export function isS3Error(error: unknown, ...names: string[]): boolean {
  if (!(error instanceof Error)) return false;
  if (names.includes(error.name)) return true;
  const code = (error as { Code?: unknown }).Code;
  return typeof code === 'string' && names.includes(code);
}
