import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../functions/core/secret';
import { type ProbeOptions, type ProbeReport, probeTenant } from '../../local/probe/probe';
import {
  startTransmitServer,
  type TransmitServer,
  type TransmitServerOptions,
} from '../../local/transmit-server';

const T0 = Date.UTC(2030, 0, 1);
const run = promisify(execFile);

/** A virtual clock the probe's waits move forward. */
class FakeClock {
  now = T0;
  nowMs(): number {
    return this.now;
  }
}

const running: TransmitServer[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

interface Probed {
  readonly report: ProbeReport;
  readonly text: string;
  readonly server: TransmitServer;
  readonly user: { refresh_token: string; session_id: string };
}

async function probe(variant: TransmitServerOptions, extra: Partial<ProbeOptions> = {}): Promise<Probed> {
  const clock = new FakeClock();
  const server = await startTransmitServer({
    clock,
    clientTokenTtlSeconds: 86_400,
    limitedClient: { clientId: 'limited', clientSecret: 'limited-secret' },
    ...variant,
  });
  running.push(server);
  const user = await server.signIn('probe-user@example.com');
  const report = await probeTenant({
    baseUrl: server.baseUrl,
    clientId: 'local-client',
    clientSecret: new Secret('local-secret'),
    refreshToken: new Secret(user.refresh_token),
    limitedClient: { clientId: 'limited', clientSecret: new Secret('limited-secret') },
    sessionId: new Secret(user.session_id),
    sleep: async (ms) => {
      clock.now += ms;
    },
    ...extra,
  });
  const text = report.lines.join('\n');
  expect(text).not.toContain(user.refresh_token);
  expect(text).not.toContain(user.session_id);
  expect(text).not.toContain('local-secret');
  if (report.liveRefreshToken) expect(text).not.toContain(report.liveRefreshToken.reveal());
  return { report, text, server, user };
}

describe('Function: probeTenant, against the emulator', () => {
  it('reports the strict default: rejected at once with invalid_grant, the session revoked, logout works', async () => {
    // Act
    const { report, text } = await probe({});

    // Assess
    expect(report.completed).toBe(true);
    expect(report.reuse).toBe('rejected-at-once');
    expect(text).toContain(
      'Reuse of a used refresh token: rejected at once: HTTP 400, code invalid_grant, error_code 400',
    );
    expect(report.reuseRevokesFamily).toBe(true);
    expect(text).toContain('reuse revokes the whole session');
    expect(text).toMatch(
      /A garbage refresh token: HTTP 400, code invalid_grant.*-> token-keeper reads: reauth/,
    );
    expect(text).toMatch(
      /A client without permissions, refreshing: HTTP 403.*-> token-keeper reads: configuration/,
    );
    expect(text).toMatch(
      /A refresh with an invalid client token: HTTP 401.*-> token-keeper reads: configuration/,
    );
    expect(report.logout).toBe('works');
    expect(text).toContain("Logout with the app's client: HTTP 204");
    expect(text).toContain('IDP_DEAD_TOKEN_CODES: keep the default (invalid_grant)');
    expect(text).toContain('expires_in: 3600 s');
    expect(text).toContain('access token: JWT, exp - iat = 3600 s');
    expect(text).toContain('REFRESH_TOKEN_TTL_SECONDS: the refresh token is opaque');
    expect(report.liveRefreshToken).toBeUndefined();
    expect(text).not.toContain('Warnings:');
  });

  it('finds a grace period, a reuse that spares the session, and a CIS 401 code to configure', async () => {
    // Act
    const { report, text, server, user } = await probe(
      {
        reuseGraceSeconds: 25,
        reuseRevokesFamily: false,
        deadTokenStyle: 'cis-401',
        deadTokenErrorCode: 'invalid_refresh_token',
      },
      { sessionId: undefined },
    );

    // Assess
    expect(report.reuse).toBe('grace');
    expect(report.graceSeconds).toEqual({ acceptedUpTo: 20, rejectedAt: 30 });
    expect(text).toContain('reuse grace period: between 20 and 30 s');
    expect(text).toContain('code invalid_refresh_token');
    expect(report.reuseRevokesFamily).toBe(false);
    expect(text).toContain('IDP_DEAD_TOKEN_CODES=invalid_grant,invalid_refresh_token');
    expect(text).toContain('a dead refresh token is answered 401');
    expect(report.logout).toBe('not-tested');
    // The live token is the session's newest.
    expect(report.liveRefreshToken?.reveal()).toBe(server.latestRefreshToken(user.refresh_token));
  });

  it('warns when a dead token carries no code token-keeper can read (CIS 400 with a numeric error_code)', async () => {
    // Act
    const { report, text } = await probe({ deadTokenStyle: 'cis-400' });

    // Assess
    expect(report.deadTokenCodes).toEqual([]);
    expect(text).toMatch(
      /A garbage refresh token: HTTP 400, error_code 400.*-> token-keeper reads: transient$/m,
    );
    expect(text).toContain('a dead refresh token was answered with HTTP 400 and no error code');
    expect(text).not.toContain('IDP_DEAD_TOKEN_CODES');
  });

  it("reports a logout the app's client may not do", async () => {
    // Act
    const { report, text } = await probe({ logout: { acceptsClientToken: false } }, { maxGraceSeconds: 0 });

    // Assess
    expect(report.logout).toBe('refused');
    expect(text).toMatch(/Logout with the app's client: HTTP 403.*-> token-keeper reads: configuration/);
    expect(text).toContain("the app's client may not log sessions out");
  });

  it('stops, consuming nothing, when the client credentials are wrong', async () => {
    // Act
    const { report, text, server, user } = await probe({}, { clientSecret: new Secret('wrong-secret') });

    // Assess
    expect(report.completed).toBe(false);
    expect(text).toContain('Client token (client credentials): HTTP 401, code invalid_client');
    expect(server.timesPresented(user.refresh_token)).toBe(0);
  });
});

describe('Script: npm run probe-idp', () => {
  it('takes secrets from the environment, prints no token and saves the live one with mode 0600', async () => {
    // Prepare
    const server = await startTransmitServer({ reuseRevokesFamily: false });
    running.push(server);
    const user = await server.signIn('probe-cli@example.com');
    const out = join(mkdtempSync(join(tmpdir(), 'probe-')), 'refresh-token');

    // Act
    const { stdout } = await run(
      process.execPath,
      [
        join('node_modules', 'tsx', 'dist', 'cli.mjs'),
        'local/probe-idp.ts',
        '--base-url',
        server.baseUrl,
        '--out',
        out,
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          PROBE_CLIENT_ID: 'local-client',
          PROBE_CLIENT_SECRET: 'local-secret',
          PROBE_REFRESH_TOKEN: user.refresh_token,
        },
        timeout: 60_000,
      },
    );

    // Assess
    const saved = readFileSync(out, 'utf8').trim();
    expect(saved).toBe(server.latestRefreshToken(user.refresh_token));
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(stdout).toContain('Reuse of a used refresh token: rejected at once');
    expect(stdout).toContain(`(fingerprint ${new Secret(saved).fingerprint()}) is in ${out} (mode 0600)`);
    expect(stdout).not.toContain(saved);
    expect(stdout).not.toContain(user.refresh_token);
    expect(stdout).not.toContain('local-secret');
  });
});
