import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { GcReport } from '../registry/gc/gc-report.ts';
import { formatRemoval, formatSummary } from './gc-output.ts';
import { callOwner, claimDataDir, type GcRequest } from '../server/control-socket.ts';
import { LocalGc } from '../server/local-gc.ts';
import { StoreRetentionPlanner } from '../registry/retention-planner.ts';
import { TagVersions } from '../registry/tag-versions.ts';
import { FsPolicyStore } from '../storage/fs/fs-policy-store.ts';
import { FsKeys } from '../storage/fs/keys.ts';
import { openFsStorage } from '../storage/fs/open-fs-storage.ts';
import { UsageError, type Command } from './command.ts';
import { parseDuration } from './duration.ts';
import { STORE_OPTIONS, STORE_USAGE } from './identity-store-option.ts';

export const usage = `gc         apply the retention rules (ocireg policy), then collect garbage: blobs no manifest references
             (bytes included), links, referrers of deleted subjects, abandoned uploads; prints each removal (kind,
             repository, tag or digest, bytes) and the total
             --dry-run            change nothing, print the same list
             --grace <duration>   keep anything younger (default 24h)
             --json               print the report as JSON
${STORE_USAGE}
             --bucket <name>      with --table: the deployed blob bucket (--stack reads it from the outputs)
             --event-bus <name>   with --table: send a GC event per removal there, as the scheduled function does
                                  (--stack reads the EventBusName output, present when the stack has events)
             --clock-tolerance <duration>
                                  with --stack/--table: how far this machine's clock may be from the registry
                                  function's (default 10m; 0s when both run on this machine, as with dev:aws)
             With --data-dir, a running \`ocireg serve\` on that dir does the run (through <data-dir>/control.sock).`;

export const run: Command = async (args) => {
  const { values } = parseArgs({
    args,
    options: {
      ...STORE_OPTIONS,
      'dry-run': { type: 'boolean', default: false },
      grace: { type: 'string' },
      json: { type: 'boolean', default: false },
      bucket: { type: 'string' },
      'event-bus': { type: 'string' },
      'clock-tolerance': { type: 'string' },
    },
    strict: true,
  });
  const request: GcRequest = { dryRun: values['dry-run'] === true, ...(values.grace !== undefined ? { graceMs: parseDuration(values.grace) } : {}) };
  if (values.stack !== undefined && values.table !== undefined) throw new UsageError('give --stack or --table, not both');
  const deployed = values.stack !== undefined || values.table !== undefined;
  if (!deployed && (values.bucket !== undefined || values['event-bus'] !== undefined || values['clock-tolerance'] !== undefined)) {
    throw new UsageError('--bucket, --event-bus and --clock-tolerance go with --stack or --table');
  }
  const report = deployed
    ? await (await import('./deployed-gc.ts')).runDeployedGc(
        {
          stack: values.stack,
          table: values.table,
          bucket: values.bucket,
          eventBus: values['event-bus'],
          region: values.region,
          ...(values['clock-tolerance'] !== undefined ? { clockToleranceMs: parseDuration(values['clock-tolerance']) } : {}),
        },
        request,
      )
    : await runLocalGc(values['data-dir'], request);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    for (const removal of report.removals) process.stdout.write(`${formatRemoval(removal)}\n`);
    process.stdout.write(`${formatSummary(report)}\n`);
  }
  return 0;
};

/**
 * On a data dir: the process that owns it runs the collection (its in-process marks keep pushes safe); when none
 * does, this process claims the dir for the run, so a `serve` started meanwhile waits its turn (refuses to start).
 */
export async function runLocalGc(dataDir: string, request: GcRequest): Promise<GcReport> {
  const keys = new FsKeys(resolve(dataDir));
  const answer = await callOwner(keys, '/gc', request);
  if (answer !== undefined) {
    if (answer.status !== 200) throw new Error(`the ocireg process serving ${keys.root} answered ${answer.status}: ${(answer.value as { error?: string } | undefined)?.error ?? ''}`);
    return answer.value as GcReport;
  }
  let gc: LocalGc | undefined;
  const control = await claimDataDir(keys, { gc: (forwarded) => gc!.gc(forwarded) });
  try {
    const storage = await openFsStorage(keys.root);
    const retention = new StoreRetentionPlanner({ metadata: storage.metadata, policies: new FsPolicyStore(storage.keys), history: storage.history });
    // No events without a server (webhooks are serve's); expired tags still get their history entry.
    const versions = new TagVersions({ metadata: storage.metadata, history: storage.history });
    gc = new LocalGc(storage, retention, (removal) => versions.recordCollected(removal));
    return await gc.gc(request);
  } finally {
    await control.close();
  }
}
