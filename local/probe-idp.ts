import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Secret } from '../functions/core/secret';
import { probeTenant } from './probe/probe';

const USAGE = `Usage: npm run probe-idp -- --base-url https://api.sbx.transmitsecurity.io [--out FILE] [--max-grace-seconds 120]

Secrets come from the environment, never from arguments:
  PROBE_CLIENT_ID, PROBE_CLIENT_SECRET    the app's client credentials (required)
  PROBE_REFRESH_TOKEN                     a test user's live refresh token (required; the probe consumes it)
  PROBE_LIMITED_CLIENT_ID, _SECRET        a client without the refresh permission (optional)
  PROBE_SESSION_ID                        the test user's session id, to try logout (optional; ends the session)

The probe prints no token. With --out FILE it writes the test user's last live refresh token to
FILE (created with mode 0600; an existing file is never overwritten).`;

/** `npm run probe-idp`: settles, once, how a Transmit tenant answers what token-keeper relies on. */
async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'base-url': { type: 'string' },
      out: { type: 'string' },
      'max-grace-seconds': { type: 'string', default: '120' },
      'timeout-ms': { type: 'string', default: '10000' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const env = process.env;
  const missing = ['PROBE_CLIENT_ID', 'PROBE_CLIENT_SECRET', 'PROBE_REFRESH_TOKEN'].filter(
    (name) => !env[name],
  );
  const baseUrl = values['base-url'];
  const maxGraceSeconds = Number(values['max-grace-seconds']);
  const timeoutMs = Number(values['timeout-ms']);
  if (!baseUrl || missing.length > 0 || !(maxGraceSeconds >= 0) || !(timeoutMs > 0)) {
    if (!baseUrl) process.stderr.write('--base-url is required\n');
    if (missing.length > 0) process.stderr.write(`missing environment variables: ${missing.join(', ')}\n`);
    process.stderr.write(`${USAGE}\n`);
    return 1;
  }
  if ((env.PROBE_LIMITED_CLIENT_ID === undefined) !== (env.PROBE_LIMITED_CLIENT_SECRET === undefined)) {
    process.stderr.write('set both PROBE_LIMITED_CLIENT_ID and PROBE_LIMITED_CLIENT_SECRET, or neither\n');
    return 1;
  }
  // Open the output first: the probe consumes the token, so a file that cannot be written must stop it before.
  let out: number | undefined;
  if (values.out) {
    try {
      out = openSync(values.out, 'wx', 0o600);
    } catch (error) {
      process.stderr.write(`cannot create --out ${values.out}: ${(error as NodeJS.ErrnoException).code}\n`);
      return 1;
    }
  }

  const report = await probeTenant({
    baseUrl,
    clientId: env.PROBE_CLIENT_ID as string,
    clientSecret: new Secret(env.PROBE_CLIENT_SECRET as string),
    refreshToken: new Secret(env.PROBE_REFRESH_TOKEN as string),
    ...(env.PROBE_LIMITED_CLIENT_ID && env.PROBE_LIMITED_CLIENT_SECRET
      ? {
          limitedClient: {
            clientId: env.PROBE_LIMITED_CLIENT_ID,
            clientSecret: new Secret(env.PROBE_LIMITED_CLIENT_SECRET),
          },
        }
      : {}),
    ...(env.PROBE_SESSION_ID ? { sessionId: new Secret(env.PROBE_SESSION_ID) } : {}),
    maxGraceSeconds,
    timeoutMs,
  });
  for (const line of report.lines) process.stdout.write(`${line}\n`);

  process.stdout.write('\n');
  const live = report.liveRefreshToken;
  if (live && out !== undefined && values.out) {
    writeSync(out, `${live.reveal()}\n`);
    closeSync(out);
    process.stdout.write(
      `The test user's live refresh token (fingerprint ${live.fingerprint()}) is in ${values.out} (mode 0600).\n`,
    );
  } else {
    if (out !== undefined && values.out) {
      closeSync(out);
      unlinkSync(values.out);
    }
    process.stdout.write(
      live
        ? "The test user's live refresh token was not saved (no --out): count it as consumed; sign the test user in again.\n"
        : "The probe consumed the test user's refresh token (no live token is left): sign the test user in again.\n",
    );
  }
  return report.completed ? 0 : 2;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    // The name only: a stack or message could hold what a request carried.
    process.stderr.write(`probe failed: ${error instanceof Error ? error.name : 'error'}\n`);
    process.exit(1);
  },
);
