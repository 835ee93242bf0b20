import type { GcRemoval, GcReport } from '../registry/gc/gc-report.ts';
import { formatBytes } from '../client/progress.ts';

/** One line per removal, as `ocireg gc` prints it: kind, repository, tag or digest, bytes. */
export function formatRemoval(removal: GcRemoval): string {
  switch (removal.kind) {
    case 'tag':
      return `tag\t${removal.name}:${removal.tag}\t${removal.digest}\t(${removal.reason})`;
    case 'manifest':
      return `manifest\t${removal.name}@${removal.digest}\t${removal.bytes}\t(${removal.reason})`;
    case 'link':
      return `link\t${removal.name}@${removal.digest}\t${removal.bytes}`;
    case 'blob':
      return `blob\t${removal.digest}\t${removal.bytes}`;
    case 'upload':
      return `upload\t${removal.name === undefined ? '' : `${removal.name} `}${removal.uploadId}\t${removal.bytes}`;
    case 'bytes':
      return `bytes\t${removal.location}\t${removal.bytes}`;
    case 'manifest-body':
      return `manifest-body\t${removal.digest}\t${removal.bytes}`;
  }
}

/** The closing line: how much went. */
export function formatSummary(report: GcReport): string {
  const verb = report.dryRun ? 'would free' : 'freed';
  const partial = report.complete ? '' : ' (stopped at the deadline; the next run continues)';
  return `${verb} ${report.bytesFreed} bytes (${formatBytes(report.bytesFreed)}) in ${report.objectsDeleted} removals${partial}`;
}
