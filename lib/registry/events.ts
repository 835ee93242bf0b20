import { randomUUID } from 'node:crypto';
import type { Actor } from './tag-history.ts';

/**
 * Registry events: one JSON shape for EventBridge and local webhooks, close to ECR's "ECR Image Action" so
 * existing rules translate (`detail-type`, `source`, `detail.action-type`, `repository-name`, `image-digest`,
 * `image-tag`, `result`). Documented in docs/events.md.
 */

export const EVENT_SOURCE = 'ocireg';
export const EVENT_DETAIL_TYPE = 'Ocireg Image Action';

/** PUSH: a manifest stored (with its tags); TAG: a tag created or moved without a push (promotion, rollback); DELETE: a tag or manifest deleted; GC: a blob or manifest removed by garbage collection. */
export type EventAction = 'PUSH' | 'TAG' | 'DELETE' | 'GC';

/** The names `--webhook-events` and the construct's `webhooks[].events` take. */
export const EVENT_FILTERS: Record<string, EventAction> = { push: 'PUSH', tag: 'TAG', delete: 'DELETE', gc: 'GC' };

export interface EventDetail {
  'action-type': EventAction;
  result: 'SUCCESS';
  'repository-name': string;
  'image-digest': string;
  /** The first tag a push set (ECR's field); absent for a push by digest. */
  'image-tag'?: string;
  /** Every tag the change set or removed. */
  'image-tags'?: string[];
  /** TAG and PUSH: what the tag pointed at before, when it moved. */
  'previous-digest'?: string;
  'media-type'?: string;
  /** GC: `blob` or `manifest`; DELETE: `tag` or `manifest`. */
  'artifact-type'?: 'blob' | 'manifest' | 'tag';
  actor?: Actor;
  'user-agent'?: string;
  /** GC: why a manifest or tag was removed (the retention rule, or `referrer of a deleted subject`). */
  reason?: string;
}

/** The envelope, as EventBridge delivers it to rule targets (and as webhooks receive it locally). */
export interface RegistryEvent {
  version: '0';
  id: string;
  'detail-type': typeof EVENT_DETAIL_TYPE;
  source: typeof EVENT_SOURCE;
  time: string;
  detail: EventDetail;
}

/** Where events go. `publish` is called once per change, after the change is stored. */
export interface EventSink {
  /**
   * Sends the events of one change: at most one remote call (one PutEvents), and never waits on a webhook
   * receiver. A failure is reported by rejecting; the change itself stands (the caller logs and goes on).
   */
  publish(events: RegistryEvent[]): Promise<void>;
}

export function registryEvent(detail: EventDetail, time = new Date()): RegistryEvent {
  return { version: '0', id: randomUUID(), 'detail-type': EVENT_DETAIL_TYPE, source: EVENT_SOURCE, time: time.toISOString(), detail };
}

/** Parses `push,delete` into actions; throws naming the known ones. */
export function parseEventFilter(list: string): EventAction[] {
  return list.split(',').map((word) => {
    const action = EVENT_FILTERS[word.trim().toLowerCase()];
    if (!action) throw new Error(`unknown event kind "${word}": use ${Object.keys(EVENT_FILTERS).join(', ')}`);
    return action;
  });
}
