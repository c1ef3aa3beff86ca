import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { AppEvent, EventPublisher, Logger } from '../../core/ports';
import { EVENT_SOURCE } from '../../shared-facts';
import { awsClientConfig } from '../aws-client-config';

/** The event's detail: ids and times only, never token material. */
export function eventDetail(event: AppEvent): Record<string, unknown> {
  const { type: _type, key, ...rest } = event;
  return { userId: key.userId, resource: key.resource, ...rest };
}

/** Publishes app events on an EventBridge bus. */
export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly busName: string,
    /** @default a client whose calls are bounded by the default AWS call limits */
    private readonly client: EventBridgeClient = new EventBridgeClient(awsClientConfig()),
  ) {}

  async publish(event: AppEvent): Promise<void> {
    const result = await this.client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: this.busName,
            Source: EVENT_SOURCE,
            DetailType: event.type,
            Detail: JSON.stringify(eventDetail(event)),
          },
        ],
      }),
    );
    if ((result.FailedEntryCount ?? 0) > 0) throw new Error(`EventBridge refused the ${event.type} event`);
  }
}

/** Where no bus is configured: the event goes to the log. */
export class LogEventPublisher implements EventPublisher {
  constructor(private readonly logger: Logger) {}

  async publish(event: AppEvent): Promise<void> {
    this.logger.info(`event: ${event.type}`, {
      userId: event.key.userId,
      resource: event.key.resource,
      ...('reason' in event ? { reason: event.reason } : {}),
    });
  }
}
