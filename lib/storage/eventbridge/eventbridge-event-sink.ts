import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { EventSink, RegistryEvent } from '../../registry/events.ts';

/**
 * Events to EventBridge: one PutEvents per change (a change yields one event; PutEvents takes up to 10). Webhooks are
 * EventBridge's business (rules → API destinations, with their own retries): the function never waits on a receiver.
 * The envelope EventBridge delivers to targets is the one docs/events.md describes: `source`, `detail-type`, `time`
 * and `detail` come from here, `id`, `account`, `region` and `resources` from EventBridge.
 * @see https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
 */
export class EventBridgeEventSink implements EventSink {
  readonly #client: EventBridgeClient;
  readonly #bus: string;

  constructor(options: { client: EventBridgeClient; bus?: string }) {
    this.#client = options.client;
    this.#bus = options.bus ?? 'default';
  }

  async publish(events: RegistryEvent[]): Promise<void> {
    if (events.length === 0) return;
    const result = await this.#client.send(
      new PutEventsCommand({
        Entries: events.map((event) => ({
          EventBusName: this.#bus,
          Source: event.source,
          DetailType: event['detail-type'],
          Time: new Date(event.time),
          Detail: JSON.stringify(event.detail),
        })),
      }),
    );
    if ((result.FailedEntryCount ?? 0) > 0) {
      const failed = result.Entries?.find((entry) => entry.ErrorCode !== undefined);
      throw new Error(`PutEvents refused ${result.FailedEntryCount} event(s): ${failed?.ErrorCode ?? ''} ${failed?.ErrorMessage ?? ''}`);
    }
  }
}
