import { inspect } from 'node:util';

/** The rejection of `promise`; fails the test when it resolves. */
export async function caught(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error as Error,
  );
}

/** Everything a log line could show of an error: message, JSON, and util.inspect with causes. */
export function shown(error: Error): string {
  return `${error.message} ${JSON.stringify(error)} ${inspect(error, { depth: 5, showHidden: false })}`;
}
