import type { FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';

/**
 * Reads the table of contents of a tar file (ustar, GNU long names, PAX headers) without reading the members:
 * each entry says where its bytes are, so a layer inside `docker save` output or an OCI archive is streamed
 * straight from the archive with fs reads at offsets, never extracted.
 * @see https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_06
 */

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarEntry {
  /** Normalized path: no leading `./`, no trailing `/`. */
  name: string;
  type: TarEntryType;
  /** Byte offset of the member's data in the archive. */
  offset: number;
  size: number;
  /** Target of a symlink or hard link, as written in the archive. */
  linkName?: string;
}

const BLOCK = 512;

export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

/** Lists every entry of the tar file behind `file`. A compressed file is refused: these archives are plain tars. */
export async function readTarIndex(file: FileHandle): Promise<TarEntry[]> {
  const { size: fileSize } = await file.stat();
  const entries: TarEntry[] = [];
  const header = Buffer.alloc(BLOCK);
  let position = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};

  const magic = Buffer.alloc(4);
  await file.read(magic, 0, 4, 0);
  if (magic[0] === 0x1f && magic[1] === 0x8b) throw new TarFormatError('this is a gzip file, not a tar: decompress it first (gunzip)');
  if (magic.readUInt32LE(0) === 0xfd2fb528) throw new TarFormatError('this is a zstd file, not a tar: decompress it first (unzstd)');
  if (fileSize % BLOCK !== 0 && fileSize < BLOCK) throw new TarFormatError(`a ${fileSize}-byte file is not a tar`);

  while (position + BLOCK <= fileSize) {
    const { bytesRead } = await file.read(header, 0, BLOCK, position);
    if (bytesRead < BLOCK) throw new TarFormatError(`truncated tar header at byte ${position}`);
    if (header.every((byte) => byte === 0)) break;
    checkChecksum(header, position);

    const size = parseNumber(header.subarray(124, 136), position);
    const typeFlag = String.fromCharCode(header[156]!);
    const dataOffset = position + BLOCK;
    if (dataOffset + size > fileSize) throw new TarFormatError(`tar entry at byte ${position} runs past the end of the file`);
    position = dataOffset + Math.ceil(size / BLOCK) * BLOCK;

    if (typeFlag === 'L' || typeFlag === 'K') {
      const text = stripNul(await readString(file, dataOffset, size));
      if (typeFlag === 'L') longName = text;
      else longLink = text;
      continue;
    }
    if (typeFlag === 'x' || typeFlag === 'g') {
      const records = parsePax(await readString(file, dataOffset, size), dataOffset);
      if (typeFlag === 'x') pax = records;
      else globalPax = { ...globalPax, ...records };
      continue;
    }

    const attributes = { ...globalPax, ...pax };
    const ustarName = field(header, 0, 100);
    const prefix = header.subarray(257, 263).toString('latin1').startsWith('ustar') ? field(header, 345, 155) : '';
    const rawName = attributes.path ?? longName ?? (prefix ? `${prefix}/${ustarName}` : ustarName);
    const rawLink = attributes.linkpath ?? longLink ?? field(header, 157, 100);
    const realSize = attributes.size !== undefined ? Number(attributes.size) : size;
    longName = longLink = undefined;
    pax = {};

    const entry: TarEntry = { name: normalizeTarPath(rawName), type: entryType(typeFlag), offset: dataOffset, size: realSize };
    if (entry.type === 'symlink' || entry.type === 'hardlink') {
      entry.linkName = rawLink;
      entry.size = 0;
    }
    entries.push(entry);
  }
  return entries;
}

/** `./blobs/sha256/ab/` → `blobs/sha256/ab`. */
export function normalizeTarPath(name: string): string {
  const normalized = posix.normalize(name.replace(/^\/+/, '')).replace(/\/+$/, '');
  return normalized === '.' ? '' : normalized.replace(/^\.\//, '');
}

/**
 * Follows symlinks and hard links (docker save links identical layers: `b/layer.tar -> ../a/layer.tar`) to the
 * entry that holds the bytes.
 */
export function resolveTarEntry(entries: Map<string, TarEntry>, name: string): TarEntry | undefined {
  let current = entries.get(normalizeTarPath(name));
  for (let hops = 0; current && hops < 16; hops++) {
    if (current.type === 'file') return current;
    if (current.linkName === undefined) return undefined;
    // A symlink is relative to its own directory; a hard link names a path from the archive root.
    const target = current.type === 'symlink' && !current.linkName.startsWith('/') ? posix.join(posix.dirname(current.name), current.linkName) : current.linkName;
    current = entries.get(normalizeTarPath(target));
  }
  return undefined;
}

function entryType(flag: string): TarEntryType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '5':
      return 'directory';
    case '2':
      return 'symlink';
    case '1':
      return 'hardlink';
    default:
      return 'other';
  }
}

function field(header: Buffer, start: number, length: number): string {
  return stripNul(header.subarray(start, start + length).toString('utf8'));
}

function stripNul(text: string): string {
  const end = text.indexOf('\0');
  return end < 0 ? text : text.slice(0, end);
}

/** Octal, NUL/space padded; or GNU base-256 (high bit set) for sizes over 8 GiB. */
function parseNumber(bytes: Buffer, position: number): number {
  if (bytes[0]! & 0x80) {
    let value = 0;
    for (let i = 1; i < bytes.length; i++) value = value * 256 + bytes[i]!;
    return value;
  }
  const text = bytes.toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`invalid number "${text}" in tar header at byte ${position}`);
  return parseInt(text, 8);
}

function checkChecksum(header: Buffer, position: number): void {
  const stored = parseNumber(header.subarray(148, 156), position);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  if (sum !== stored) throw new TarFormatError(`bad tar header checksum at byte ${position}: not a tar file?`);
}

async function readString(file: FileHandle, offset: number, size: number): Promise<string> {
  if (size > 16 * 1024 * 1024) throw new TarFormatError(`tar extended header of ${size} bytes is too large`);
  const buffer = Buffer.alloc(size);
  await file.read(buffer, 0, size, offset);
  return buffer.toString('utf8');
}

/** PAX records: `<length> <key>=<value>\n`, where length counts the whole record in bytes. */
function parsePax(text: string, offset: number): Record<string, string> {
  const records: Record<string, string> = {};
  const bytes = Buffer.from(text, 'utf8');
  let at = 0;
  while (at < bytes.length && bytes[at] !== 0) {
    const space = bytes.indexOf(0x20, at);
    const length = Number(bytes.subarray(at, space).toString('latin1'));
    if (space < 0 || !Number.isInteger(length) || length <= 0) throw new TarFormatError(`invalid PAX header at byte ${offset + at}`);
    const record = bytes.subarray(space + 1, at + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    at += length;
  }
  return records;
}
