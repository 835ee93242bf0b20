import { createHmac } from 'node:crypto';
import type { EventAction, EventSink, RegistryEvent } from '../registry/events.ts';

/** One `--webhook`: where to POST, the HMAC secret, and which event kinds (all when absent). */
export interface WebhookTarget {
  url: string;
  secret?: string;
  events?: EventAction[];
}

export interface WebhookSinkOptions {
  targets: WebhookTarget[];
  /** How long one delivery is retried while the receiver is down or answers non-2xx. @default 5 minutes */
  retryForMs?: number;
  /** The first retry's delay, doubled per attempt up to 30 s. @default 250 ms */
  firstDelayMs?: number;
  /** Told when a delivery is given up. */
  log?: (entry: Record<string, unknown>) => void;
}

const MAX_DELAY_MS = 30_000;
const ATTEMPT_TIMEOUT_MS = 10_000;

/** `X-Ocireg-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` (GitHub's webhook convention). */
export function webhookSignature(secret: string, body: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Local webhooks for `ocireg serve --webhook`: `publish` starts the deliveries and returns at once, so a push never
 * waits on a receiver. Each delivery is POSTed until a 2xx, with exponential backoff for a bounded time; events
 * are not persisted, so deliveries pending when the server stops are lost (the AWS deployment has EventBridge's
 * retries instead).
 */
export class WebhookSink implements EventSink {
  readonly #targets: WebhookTarget[];
  readonly #retryForMs: number;
  readonly #firstDelayMs: number;
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #stop = new AbortController();
  readonly #pending = new Set<Promise<void>>();

  constructor(options: WebhookSinkOptions) {
    this.#targets = options.targets;
    this.#retryForMs = options.retryForMs ?? 5 * 60_000;
    this.#firstDelayMs = options.firstDelayMs ?? 250;
    this.#log = options.log ?? (() => undefined);
  }

  async publish(events: RegistryEvent[]): Promise<void> {
    for (const event of events) {
      const body = JSON.stringify(event);
      for (const target of this.#targets) {
        if (target.events && !target.events.includes(event.detail['action-type'])) continue;
        const delivery = this.#deliver(target, event, body).finally(() => this.#pending.delete(delivery));
        this.#pending.add(delivery);
      }
    }
  }

  /** Stops retrying; deliveries under way end. */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled([...this.#pending]);
  }

  async #deliver(target: WebhookTarget, event: RegistryEvent, body: string): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'ocireg-webhook',
      'x-ocireg-event': event.detail['action-type'],
      'x-ocireg-delivery': event.id,
    };
    if (target.secret !== undefined) headers['x-ocireg-signature-256'] = webhookSignature(target.secret, body);
    const deadline = Date.now() + this.#retryForMs;
    let delay = this.#firstDelayMs;
    let last = '';
    for (let attempt = 1; !this.#stop.signal.aborted; attempt++) {
      try {
        const response = await fetch(target.url, { method: 'POST', headers, body, signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]) });
        await response.body?.cancel();
        if (response.ok) return;
        last = `answered ${response.status}`;
      } catch (error) {
        last = (error as Error).message;
      }
      if (Date.now() + delay > deadline) break;
      await sleep(delay, this.#stop.signal);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
    this.#log({ level: 'warn', msg: 'webhook delivery given up', url: target.url, event: event.id, last });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}
