import { OciError, nameInvalid } from './errors.ts';

/**
 * Repository names and tags, by the spec's grammar.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pulling-manifests
 */

const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
export const NAME_PATTERN = `${NAME_COMPONENT}(?:/${NAME_COMPONENT})*`;
const NAME = new RegExp(`^${NAME_PATTERN}$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** Distribution's limit; a longer name cannot be addressed by docker either. */
const MAX_NAME_LENGTH = 255;

export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

export function assertName(name: string): void {
  if (!isValidName(name)) throw nameInvalid(name);
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

export function assertTag(tag: string): void {
  if (!isValidTag(tag)) {
    throw new OciError('MANIFEST_INVALID', 'invalid tag', { tag });
  }
}
