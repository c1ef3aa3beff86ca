import { randomBytes } from 'node:crypto';
import {
  classifyFailure,
  DEFAULT_DEAD_TOKEN_CODES,
  ERROR_CODE,
  type FetchFn,
  MAX_BODY_BYTES,
  readCapped,
} from '../../functions/adapters/idp/http';
import { IdpConfigurationError, IdpPermanentError } from '../../functions/core/errors';
import { Secret } from '../../functions/core/secret';

/**
 * The tenant probe behind `npm run probe-idp`: one run against a sandbox Transmit tenant settles
 * what the public documentation leaves open (how a dead or reused refresh token is answered, the
 * reuse grace, what a client without permissions gets, the lifetimes, whether the app's client
 * may log sessions out) and says which settings follow. It prints statuses, error codes, field
 * names, numbers and fingerprints, never a token, a secret or a message text (which may quote one).
 */

/** What the probe needs. */
export interface ProbeOptions {
  /** The tenant's API host, e.g. `https://api.sbx.transmitsecurity.io`. */
  readonly baseUrl: string;
  readonly clientId: string;
  readonly clientSecret: Secret;
  /** A test user's live refresh token; the probe consumes it. */
  readonly refreshToken: Secret;
  /** A second client of the tenant without the refresh permission. @default none (skipped) */
  readonly limitedClient?: { readonly clientId: string; readonly clientSecret: Secret };
  /** The session of that refresh token, to try logout with the app's client. @default none (skipped) */
  readonly sessionId?: Secret;
  /** Longest reuse grace to look for, in seconds. @default 120 */
  readonly maxGraceSeconds?: number;
  /** Deadline of each request. @default 10_000 */
  readonly timeoutMs?: number;
  /** @default globalThis.fetch */
  readonly fetch?: FetchFn;
  /** How the probe waits between reuse checks (tests move a fake clock instead). @default a timer */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** One answer as the probe may show it: no body text, only its shape. */
export interface Observation {
  /** The HTTP status, or what happened instead. */
  readonly status: number | 'timeout' | 'network error';
  /** `error`, or CIS `error_code`, when it is a short code. */
  readonly code: string | undefined;
  /** CIS `error_code` when it is a number. */
  readonly numericCode: number | undefined;
  /** The top-level field names of a JSON body. */
  readonly fields: readonly string[];
  /** How token-keeper reads this answer (with the default IDP_DEAD_TOKEN_CODES). */
  readonly tokenKeeperReads: string;
}

/** What the run found. */
export interface ProbeReport {
  /** Every line of the report, in order (what the CLI prints). */
  readonly lines: readonly string[];
  /** The refresh token the test user holds at the end (to be saved), if one is still live. */
  readonly liveRefreshToken: Secret | undefined;
  /** Codes seen on answers that rejected a dead refresh token. */
  readonly deadTokenCodes: readonly string[];
  readonly reuse: 'rejected-at-once' | 'grace' | 'never-rejected' | 'not-rotating' | 'not-tested';
  readonly graceSeconds:
    | { readonly acceptedUpTo: number; readonly rejectedAt: number | undefined }
    | undefined;
  readonly reuseRevokesFamily: boolean | undefined;
  readonly logout: 'works' | 'refused' | 'not-tested' | 'other';
  /** False when the probe stopped early (the client or the refresh token did not work). */
  readonly completed: boolean;
}

const GRACE_CHECKPOINTS_S = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

interface Answer {
  readonly observation: Observation;
  readonly json: Readonly<Record<string, unknown>> | undefined;
}

/** Runs the probe. It never throws for an answer of the tenant; it reports it. */
export async function probeTenant(options: ProbeOptions): Promise<ProbeReport> {
  const base = options.baseUrl.replace(/\/+$/, '');
  const fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  const timeoutMs = options.timeoutMs ?? 10_000;
  const sleep = options.sleep ?? ((ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const maxGraceSeconds = options.maxGraceSeconds ?? 120;
  const lines: string[] = [];
  const settings: string[] = [];
  const warnings: string[] = [];
  const say = (line: string) => lines.push(line);

  async function send(path: string, body: string, headers: Record<string, string>): Promise<Answer> {
    const signal = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      response = await fetchFn(`${base}${path}`, {
        method: 'POST',
        headers: { accept: 'application/json', ...headers },
        body,
        signal,
        redirect: 'manual',
      });
    } catch {
      const status = signal.aborted ? 'timeout' : 'network error';
      return { observation: shape(status, undefined, undefined), json: undefined };
    }
    let json: Record<string, unknown> | undefined;
    try {
      const text = await readCapped(response, MAX_BODY_BYTES);
      const parsed: unknown = text ? JSON.parse(text) : undefined;
      json =
        typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
          ? (parsed as never)
          : undefined;
    } catch {
      json = undefined;
    }
    return { observation: shape(response.status, response.headers, json), json };
  }

  const clientToken = async (clientId: string, secret: Secret) =>
    send(
      '/oidc/token',
      new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: secret.reveal(),
      }).toString(),
      { 'content-type': 'application/x-www-form-urlencoded' },
    );
  const withBearer = (path: string, body: Record<string, string>, bearer: Secret) =>
    send(path, JSON.stringify(body), {
      'content-type': 'application/json',
      authorization: `Bearer ${bearer.reveal()}`,
    });
  const refresh = (token: Secret, bearer: Secret) =>
    withBearer('/cis/v1/auth/token/refresh', { refresh_token: token.reveal() }, bearer);

  const report = (fields: Partial<ProbeReport> & { completed: boolean }): ProbeReport => {
    if (settings.length > 0) {
      say('');
      say('Settings that follow:');
      for (const setting of settings) say(`  ${setting}`);
    }
    if (warnings.length > 0) {
      say('');
      say('Warnings:');
      for (const warning of warnings) say(`  ! ${warning}`);
    }
    return {
      lines,
      liveRefreshToken: undefined,
      deadTokenCodes: [],
      reuse: 'not-tested',
      graceSeconds: undefined,
      reuseRevokesFamily: undefined,
      logout: 'not-tested',
      ...fields,
    };
  };

  say(`Probing ${base}`);

  // 1. The app's client token.
  const appToken = await clientToken(options.clientId, options.clientSecret);
  const appBearer = secretField(appToken.json, 'access_token');
  say(`Client token (client credentials): ${describe(appToken.observation)}`);
  if (appToken.observation.status !== 200 || !appBearer) {
    warnings.push(
      'the app client could not get a token: check PROBE_CLIENT_ID, PROBE_CLIENT_SECRET and --base-url',
    );
    return report({ completed: false });
  }
  const clientLifetime = numberField(appToken.json, 'expires_in');
  if (clientLifetime !== undefined) say(`  client token lifetime: ${clientLifetime} s`);

  // 2. The first refresh: rotation and lifetimes.
  let elapsedS = 0;
  const first = await refresh(options.refreshToken, appBearer);
  say(`Refresh with the given token: ${describe(first.observation)}`);
  if (first.observation.status !== 200) {
    warnings.push(
      'the given refresh token was not accepted: sign the test user in again and pass a fresh one',
    );
    return report({ completed: false });
  }
  const rotatedToken = secretField(first.json, 'refresh_token');
  let live: Secret | undefined = rotatedToken ?? options.refreshToken;
  reportLifetimes(first.json, say, settings);

  const deadCodes = new Set<string>();
  const rejections: Observation[] = [];
  const noteRejection = (observation: Observation) => {
    rejections.push(observation);
    if (observation.code) deadCodes.add(observation.code);
  };

  // 3. Reuse of the token just used: at once, then over time while it is still accepted.
  let reuse: ProbeReport['reuse'] = 'not-rotating';
  let graceSeconds: ProbeReport['graceSeconds'];
  let reuseRevokesFamily: boolean | undefined;
  if (!rotatedToken) {
    say(
      'Reuse: the tenant did not rotate the refresh token (no refresh_token in the answer); reuse not tested',
    );
  } else {
    let acceptedUpTo: number | undefined;
    let rejection: Observation | undefined;
    const again = await refresh(options.refreshToken, appBearer);
    if (again.observation.status === 200) {
      acceptedUpTo = 0;
      live = secretField(again.json, 'refresh_token') ?? live;
      for (const checkpoint of GRACE_CHECKPOINTS_S.filter((s) => s <= maxGraceSeconds)) {
        await sleep((checkpoint - elapsedS) * 1000);
        elapsedS = checkpoint;
        const later = await refresh(options.refreshToken, appBearer);
        if (later.observation.status !== 200) {
          rejection = later.observation;
          break;
        }
        acceptedUpTo = checkpoint;
        live = secretField(later.json, 'refresh_token') ?? live;
      }
    } else {
      rejection = again.observation;
    }
    if (acceptedUpTo === undefined && rejection) {
      reuse = 'rejected-at-once';
      say(`Reuse of a used refresh token: rejected at once: ${describe(rejection)}`);
    } else if (rejection) {
      reuse = 'grace';
      graceSeconds = { acceptedUpTo: acceptedUpTo ?? 0, rejectedAt: elapsedS };
      say(
        `Reuse of a used refresh token: accepted again up to ${graceSeconds.acceptedUpTo} s after its first use, ` +
          `rejected at ${graceSeconds.rejectedAt} s: ${describe(rejection)}`,
      );
      say(`  reuse grace period: between ${graceSeconds.acceptedUpTo} and ${graceSeconds.rejectedAt} s`);
    } else {
      reuse = 'never-rejected';
      graceSeconds = { acceptedUpTo: acceptedUpTo ?? 0, rejectedAt: undefined };
      say(`Reuse of a used refresh token: still accepted ${graceSeconds.acceptedUpTo} s after its first use`);
      warnings.push(
        `a used refresh token was accepted again for ${graceSeconds.acceptedUpTo} s: either a long grace period or no reuse detection (raise --max-grace-seconds to see)`,
      );
    }
    if (rejection) {
      noteRejection(rejection);
      // Did the rejection end the whole sign-in, or only the reused token?
      const newest = live;
      const after = newest ? await refresh(newest, appBearer) : undefined;
      if (after?.observation.status === 200) {
        reuseRevokesFamily = false;
        live = secretField(after.json, 'refresh_token') ?? newest;
        say(
          '  after the rejected reuse, the newest refresh token still works: reuse does not revoke the session',
        );
      } else if (after) {
        reuseRevokesFamily = true;
        live = undefined;
        noteRejection(after.observation);
        say(
          `  after the rejected reuse, the newest refresh token is refused too: ${describe(after.observation)}`,
        );
        say('  reuse revokes the whole session (every refresh token of the sign-in)');
      }
    }
  }

  // 4. A token the tenant never issued.
  const garbage = new Secret(randomBytes(32).toString('base64url'));
  const garbageAnswer = await refresh(garbage, appBearer);
  say(`A garbage refresh token: ${describe(garbageAnswer.observation)}`);
  if (garbageAnswer.observation.status !== 200) noteRejection(garbageAnswer.observation);

  // 5. A client token the tenant never issued (how a refused client looks, to tell it apart).
  const badClient = await refresh(garbage, new Secret(`probe-${randomBytes(16).toString('hex')}`));
  say(`A refresh with an invalid client token: ${describe(badClient.observation)}`);
  if (badClient.observation.code && deadCodes.has(badClient.observation.code)) {
    warnings.push(
      `an invalid client token is answered with the same code as a dead refresh token (${badClient.observation.code}): ` +
        'token-keeper retries once with a fresh client token before it believes a 401',
    );
  }

  // 6. A client without the permission.
  if (options.limitedClient) {
    const limited = await clientToken(options.limitedClient.clientId, options.limitedClient.clientSecret);
    const limitedBearer = secretField(limited.json, 'access_token');
    if (limited.observation.status !== 200 || !limitedBearer) {
      say(`A client without permissions: its client token was refused: ${describe(limited.observation)}`);
    } else {
      const refused = await refresh(garbage, limitedBearer);
      say(`A client without permissions, refreshing: ${describe(refused.observation)}`);
      if (refused.observation.code && deadCodes.has(refused.observation.code)) {
        warnings.push(
          'a client without permissions gets the code of a dead refresh token: a permission mistake would look like dead tokens; keep IDP_DEAD_TOKEN_CODES narrow',
        );
      }
    }
  } else {
    say(
      'A client without permissions: skipped (set PROBE_LIMITED_CLIENT_ID and PROBE_LIMITED_CLIENT_SECRET)',
    );
  }

  // 7. Logout with the app's client, last: it ends the session.
  let logout: ProbeReport['logout'] = 'not-tested';
  if (options.sessionId) {
    const answer = await withBearer(
      '/cis/v1/auth/session/logout',
      { session_id: options.sessionId.reveal() },
      appBearer,
    );
    const status = answer.observation.status;
    logout =
      status === 200 || status === 204 ? 'works' : status === 401 || status === 403 ? 'refused' : 'other';
    say(`Logout with the app's client: ${describe(answer.observation)}`);
    if (logout === 'works' && live) {
      const after = await refresh(live, appBearer);
      if (after.observation.status === 200) {
        live = secretField(after.json, 'refresh_token') ?? live;
        warnings.push(
          'after logout the refresh token still works: logout does not revoke refresh tokens, so disconnect cannot cut a user off at the IdP',
        );
      } else {
        live = undefined;
        noteRejection(after.observation);
        say(`  after logout, the session's refresh token is refused: ${describe(after.observation)}`);
      }
    }
    if (logout === 'refused') {
      warnings.push(
        "the app's client may not log sessions out: disconnect will delete records but cannot end sessions at Transmit; grant the client that permission",
      );
    } else if (logout === 'other' && status !== 404) {
      warnings.push('logout gave an unexpected answer; disconnect reports such answers as "failed"');
    }
    if (status === 404) say('  404: the session was unknown (pass the session of the refresh token)');
  } else {
    say("Logout with the app's client: skipped (set PROBE_SESSION_ID to the test user's session id)");
  }

  // Which settings follow.
  const extra = [...deadCodes].filter((code) => !DEFAULT_DEAD_TOKEN_CODES.includes(code));
  if (deadCodes.size > 0 && extra.length === 0) {
    settings.push(
      'IDP_DEAD_TOKEN_CODES: keep the default (invalid_grant): the tenant says invalid_grant for a dead token',
    );
  } else if (extra.length > 0) {
    settings.push(
      `IDP_DEAD_TOKEN_CODES=${[...DEFAULT_DEAD_TOKEN_CODES, ...extra].join(',')} (the readings above use the default; with this, a dead refresh token reads as reauth)`,
    );
  }
  const codeless = rejections.filter((observation) => observation.code === undefined);
  if (codeless.length > 0) {
    const statuses = [...new Set(codeless.map((observation) => String(observation.status)))].join(', ');
    warnings.push(
      `a dead refresh token was answered with HTTP ${statuses} and no error code: token-keeper cannot tell that from an outage or a client refusal, so it never marks such a user; the record is retried until its rotation deadline`,
    );
  }
  if (rejections.some((observation) => observation.status === 401)) {
    warnings.push(
      'a dead refresh token is answered 401: token-keeper retries once with a fresh client token before it believes it (one extra request per dead token)',
    );
  }
  if (graceSeconds !== undefined) {
    settings.push(
      'reuse grace: token-keeper never presents a refresh token twice; the grace only softens an answer lost on the way',
    );
  }
  if (logout === 'works') settings.push('disconnect: logout works with the app client; nothing to set');

  return report({
    completed: true,
    liveRefreshToken: live,
    deadTokenCodes: [...deadCodes],
    reuse,
    graceSeconds,
    reuseRevokesFamily,
    logout,
  });
}

/** The access, ID and refresh lifetimes a refresh answer implies, and the settings they suggest. */
function reportLifetimes(
  json: Readonly<Record<string, unknown>> | undefined,
  say: (line: string) => void,
  settings: string[],
): void {
  const expiresIn = numberField(json, 'expires_in');
  const access = jwtLifetime(json?.access_token);
  const id = jwtLifetime(json?.id_token);
  const refreshJwt = jwtLifetime(json?.refresh_token);
  const refreshField =
    numberField(json, 'refresh_expires_in') ?? numberField(json, 'refresh_token_expires_in');
  say(`  expires_in: ${expiresIn === undefined ? 'absent' : `${expiresIn} s`}`);
  say(`  access token: ${access === undefined ? 'opaque (not a JWT)' : `JWT, exp - iat = ${access} s`}`);
  if (json?.id_token !== undefined) {
    say(`  ID token: ${id === undefined ? 'not a JWT' : `JWT, exp - iat = ${id} s`}`);
  }
  const refreshLifetime = refreshField ?? refreshJwt;
  say(
    `  refresh token: ${
      json?.refresh_token === undefined
        ? 'absent (not rotated)'
        : refreshLifetime === undefined
          ? 'opaque, lifetime not stated in the answer'
          : `lifetime ${refreshLifetime} s`
    }`,
  );
  if (expiresIn === undefined) {
    settings.push(
      access === undefined
        ? "ACCESS_TOKEN_DEFAULT_SECONDS: the answer has no expires_in; set it to the tenant's access token lifetime"
        : `ACCESS_TOKEN_DEFAULT_SECONDS=${access} (the answer has no expires_in; the access JWT lives ${access} s)`,
    );
  }
  settings.push(
    refreshLifetime === undefined
      ? 'REFRESH_TOKEN_TTL_SECONDS: the refresh token is opaque; set it to the refresh token lifetime of the app in the Transmit portal (token-keeper assumes 14 days)'
      : `REFRESH_TOKEN_TTL_SECONDS=${refreshLifetime}`,
  );
  settings.push(
    'MAX_ROTATION_SECONDS: cannot be probed in one run; set it to the maximum session lifetime of the app in the Transmit portal (token-keeper assumes 365 days; some Transmit pages say 14 days)',
  );
}

/** An answer's shape and how token-keeper reads it. */
function shape(
  status: number | 'timeout' | 'network error',
  headers: Headers | undefined,
  json: Record<string, unknown> | undefined,
): Observation {
  let code: string | undefined;
  for (const field of ['error', 'error_code'] as const) {
    const value = json?.[field];
    if (code === undefined && typeof value === 'string' && ERROR_CODE.test(value)) code = value;
  }
  const numeric = json?.error_code;
  return {
    status,
    code,
    numericCode: typeof numeric === 'number' && Number.isInteger(numeric) ? numeric : undefined,
    fields: json
      ? Object.keys(json)
          .filter((key) => /^[A-Za-z_]{1,40}$/.test(key))
          .sort()
      : [],
    tokenKeeperReads:
      typeof status === 'number' ? readAs(status, headers ?? new Headers(), json) : 'transient',
  };
}

function readAs(status: number, headers: Headers, json: Record<string, unknown> | undefined): string {
  if (status >= 200 && status < 300) return 'success';
  const failure = classifyFailure(
    { status, headers, json },
    'probe',
    { nowMs: () => Date.now() },
    { deadTokenCodes: new Set(DEFAULT_DEAD_TOKEN_CODES) },
  );
  if (failure instanceof IdpPermanentError) return 'reauth (dead token)';
  if (failure instanceof IdpConfigurationError) return 'configuration';
  return failure.notConsumed ? 'transient (not consumed)' : 'transient';
}

/** One line for an observation: status, code, field names, and token-keeper's reading. */
export function describe(observation: Observation): string {
  const parts = [typeof observation.status === 'number' ? `HTTP ${observation.status}` : observation.status];
  if (observation.code) parts.push(`code ${observation.code}`);
  if (observation.numericCode !== undefined) parts.push(`error_code ${observation.numericCode}`);
  if (observation.fields.length > 0) parts.push(`fields [${observation.fields.join(', ')}]`);
  return `${parts.join(', ')} -> token-keeper reads: ${observation.tokenKeeperReads}`;
}

function secretField(json: Readonly<Record<string, unknown>> | undefined, field: string): Secret | undefined {
  const value = json?.[field];
  return typeof value === 'string' && value.length > 0 ? new Secret(value) : undefined;
}

function numberField(json: Readonly<Record<string, unknown>> | undefined, field: string): number | undefined {
  const value = json?.[field];
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^\d{1,12}$/.test(value)) return Number(value);
  return undefined;
}

/** `exp - iat` of a JWT (not verified: only read for a number), or undefined. */
function jwtLifetime(token: unknown): number | undefined {
  if (typeof token !== 'string') return undefined;
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as {
      exp?: unknown;
      iat?: unknown;
    };
    return typeof claims.exp === 'number' && typeof claims.iat === 'number'
      ? claims.exp - claims.iat
      : undefined;
  } catch {
    return undefined;
  }
}
