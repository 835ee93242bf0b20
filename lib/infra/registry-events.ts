import type { SecretValue } from 'aws-cdk-lib';
import { ApiDestination, Authorization, Connection, EventBus, HttpMethod, Rule, type IEventBus } from 'aws-cdk-lib/aws-events';
import { ApiDestination as ApiDestinationTarget } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement, type IRole } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { EVENT_DETAIL_TYPE, EVENT_FILTERS, EVENT_SOURCE } from '../registry/events.ts';

/** A webhook EventBridge delivers (rule → API destination → connection): retries and auth are EventBridge's. */
export interface RegistryWebhook {
  /** HTTPS endpoint that receives the event JSON (docs/events.md) by POST. */
  readonly url: string;
  /** Event kinds: `push`, `tag`, `delete`, `gc`. @default all */
  readonly events?: ReadonlyArray<keyof typeof EVENT_FILTERS>;
  /** Repository names or prefixes ending in `*` (`team/*`). @default all repositories */
  readonly repositories?: readonly string[];
  /**
   * Sent as the `X-Ocireg-Webhook-Secret` header by the connection (API key authorization). EventBridge cannot sign
   * bodies, so the AWS webhooks carry the secret itself, over HTTPS, instead of the local HMAC signature.
   */
  readonly secret: SecretValue;
}

export interface RegistryEventsProps {
  /** The function's role: it gets events:PutEvents on the bus. */
  readonly role: IRole;
  /** `default`: the account's default bus; `create`: a bus of the registry's own. */
  readonly bus: 'default' | 'create';
  readonly webhooks?: readonly RegistryWebhook[];
}

/** Registry events on EventBridge, and the webhooks EventBridge delivers them to. */
export class RegistryEvents extends Construct {
  readonly bus: IEventBus;

  constructor(scope: Construct, id: string, props: RegistryEventsProps) {
    super(scope, id);
    this.bus = props.bus === 'create' ? new EventBus(this, 'Bus') : EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    props.role.addToPrincipalPolicy(new PolicyStatement({ actions: ['events:PutEvents'], resources: [this.bus.eventBusArn] }));
    (props.webhooks ?? []).forEach((webhook, index) => {
      const connection = new Connection(this, `Connection${index}`, {
        authorization: Authorization.apiKey('X-Ocireg-Webhook-Secret', webhook.secret),
        description: `ocireg webhook ${webhook.url}`,
      });
      const destination = new ApiDestination(this, `Destination${index}`, { connection, endpoint: webhook.url, httpMethod: HttpMethod.POST });
      const detail: Record<string, unknown[]> = {};
      if (webhook.events) detail['action-type'] = webhook.events.map((kind) => EVENT_FILTERS[kind]);
      if (webhook.repositories) detail['repository-name'] = webhook.repositories.map((name) => (name.endsWith('*') ? { prefix: name.slice(0, -1) } : name));
      new Rule(this, `Rule${index}`, {
        eventBus: this.bus,
        eventPattern: { source: [EVENT_SOURCE], detailType: [EVENT_DETAIL_TYPE], ...(Object.keys(detail).length > 0 ? { detail } : {}) },
        targets: [new ApiDestinationTarget(destination)],
      });
    });
  }
}
