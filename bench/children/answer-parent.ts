/**
 * The one exchange of a bench child with its parent: `run` the parameters of the first message,
 * send back its result and exit; on a failure, name the error (never its message) on stderr.
 */
export function answerParent<P, R extends object>(child: string, run: (params: P) => Promise<R>): void {
  process.once('message', (message) => {
    run(message as P).then(
      (result) => process.send?.(result, () => process.exit(0)),
      (error: unknown) => {
        process.stderr.write(`${child} failed: ${error instanceof Error ? error.name : typeof error}\n`);
        process.exit(1);
      },
    );
  });
}
