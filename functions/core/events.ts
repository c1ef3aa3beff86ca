import { errorName } from './log-fields';
import type { AppEvent, EventPublisher, Logger } from './ports';

/** Publishes an app event. Events are best effort: a failure is logged, never thrown. */
export async function publishSafely(events: EventPublisher, logger: Logger, event: AppEvent): Promise<void> {
  try {
    await events.publish(event);
  } catch (error) {
    logger.warn('event not published', {
      type: event.type,
      userId: event.key.userId,
      resource: event.key.resource,
      error: errorName(error),
    });
  }
}
