/**
 * The IdP conformance matrix: how token-keeper reads every kind of answer to a refresh, for both
 * IdP flavours. test/integration/idp-conformance.test.ts runs each row against the real adapters
 * over HTTP, and checks that the README's "IdP conformance matrix" table is exactly
 * {@link conformanceTableMarkdown} (so the table cannot drift from what is tested).
 */

/** What token-keeper does with the answer, in the words of the README. */
export type ConformanceOutcome =
  | 'rotated'
  | 'rotated-kept-refresh'
  | 'unusable'
  | 'transient (not consumed)'
  | 'transient'
  | 'configuration'
  | 'reauth';

/** One line per outcome, for the README. */
export const OUTCOME_MEANINGS: Readonly<Record<ConformanceOutcome, string>> = {
  rotated: 'the new tokens are stored; the old refresh token is never presented again.',
  'rotated-kept-refresh':
    'no new refresh token came (a non-rotating server): the new access token is stored and the current refresh token stays in use.',
  unusable:
    'the IdP answered 200, so it consumed the token, but nothing usable came: the record ends as REAUTH_REQUIRED with reason `unusable_answer`, never a retry.',
  'transient (not consumed)':
    "the IdP proved it did not process the request: the same token may be presented again at once, within the lease and the caller's budget (Retry-After honoured).",
  transient:
    'the IdP may have processed the request: the token is kept and retried later, never again within the same request.',
  configuration:
    "the IdP refused the app's client (IdpConfigurationError): no user is marked, the `IdpConfigurationRejected` metric counts it.",
  reauth:
    'the refresh token is proven dead (`invalid_grant` or a code in `IDP_DEAD_TOKEN_CODES`): the user must sign in again.',
};

/** How the test IdP answers the refresh request. */
export type MatrixReply =
  | {
      readonly kind: 'http';
      readonly status: number;
      /** Sent as is (a string) or as JSON (an object). */
      readonly body?: string | object;
      readonly headers?: Readonly<Record<string, string>>;
    }
  /** A 200 whose body stops halfway: the connection closes before `content-length` bytes. */
  | { readonly kind: 'truncated' }
  /** A 200 with a valid token set padded to 10 MB. */
  | { readonly kind: 'huge' }
  /** Nothing listens: the connection is refused before anything is sent. */
  | { readonly kind: 'refused' }
  /** The server reads the request and never answers. */
  | { readonly kind: 'hang' }
  /** The server reads the request, then resets the connection. */
  | { readonly kind: 'reset' };

/** One row of the matrix. */
export interface ConformanceRow {
  /** The answer, as the README shows it (markdown, no `|`). */
  readonly answer: string;
  readonly reply: MatrixReply;
  readonly transmit: ConformanceOutcome;
  readonly oauth2: ConformanceOutcome;
  /** Seconds the outcome waits, from `Retry-After`. */
  readonly retryAfterSeconds?: number;
  /**
   * The access-token lifetime stored for a 200 (seconds), `default` for ACCESS_TOKEN_DEFAULT_SECONDS,
   * `kept` when the current access token stays.
   */
  readonly accessLifetime?: number | 'default' | 'kept';
}

/** The tokens a matrix 200 carries (test values; the leak guard knows the CANARY marker). */
export const MATRIX_TOKENS = {
  access: 'at-CANARY-matrix-1a2b',
  refresh: 'rt-CANARY-matrix-new-3c4d',
  presented: 'rt-CANARY-matrix-old-5e6f',
} as const;

const tokenSet = (fields: Record<string, unknown> = {}) => ({
  access_token: MATRIX_TOKENS.access,
  refresh_token: MATRIX_TOKENS.refresh,
  token_type: 'Bearer',
  expires_in: 3600,
  ...fields,
});

const ok = (body: string | object): MatrixReply => ({ kind: 'http', status: 200, body });
const error = (status: number, body?: string | object, headers?: Record<string, string>): MatrixReply => ({
  kind: 'http',
  status,
  ...(body === undefined ? {} : { body }),
  ...(headers ? { headers } : {}),
});
const both = (outcome: ConformanceOutcome) => ({ transmit: outcome, oauth2: outcome });
const HTML = '<html><body>Error</body></html>';
const WEEK = 7 * 86_400;

/** Every row: RFC 6749 section 5.2 codes, odd 200s, CDN pages, network failures. */
export const CONFORMANCE_MATRIX: readonly ConformanceRow[] = [
  // A 200 consumed the token: use what can be used.
  { answer: '200 full token set', reply: ok(tokenSet()), ...both('rotated'), accessLifetime: 3600 },
  {
    answer: '200 without `refresh_token`',
    reply: ok(tokenSet({ refresh_token: undefined })),
    ...both('rotated-kept-refresh'),
    accessLifetime: 3600,
  },
  {
    answer: '200 without `expires_in`',
    reply: ok(tokenSet({ expires_in: undefined })),
    ...both('rotated'),
    accessLifetime: 'default',
  },
  {
    answer: '200 `expires_in` huge (1e12)',
    reply: ok(tokenSet({ expires_in: 1e12 })),
    ...both('rotated'),
    accessLifetime: WEEK,
  },
  {
    answer: '200 `expires_in` in milliseconds (3600000)',
    reply: ok(tokenSet({ expires_in: 3_600_000 })),
    ...both('rotated'),
    accessLifetime: WEEK,
  },
  {
    answer: '200 `expires_in` negative (-60)',
    reply: ok(tokenSet({ expires_in: -60 })),
    ...both('rotated'),
    accessLifetime: 1,
  },
  {
    answer: '200 `expires_in` fractional (3599.9)',
    reply: ok(tokenSet({ expires_in: 3599.9 })),
    ...both('rotated'),
    accessLifetime: 3599,
  },
  {
    answer: '200 `expires_in` as a string ("3600")',
    reply: ok(tokenSet({ expires_in: '3600' })),
    ...both('rotated'),
    accessLifetime: 3600,
  },
  {
    answer: '200 `expires_in` as words ("an hour")',
    reply: ok(tokenSet({ expires_in: 'an hour' })),
    ...both('rotated'),
    accessLifetime: 'default',
  },
  {
    answer: '200 only a `refresh_token`',
    reply: ok({ refresh_token: MATRIX_TOKENS.refresh }),
    ...both('rotated'),
    accessLifetime: 'kept',
  },
  { answer: '200 `{}`', reply: ok({}), ...both('unusable') },
  { answer: '200 not JSON (HTML)', reply: ok(HTML), ...both('unusable') },
  { answer: '200 body cut off halfway', reply: { kind: 'truncated' }, ...both('unusable') },
  { answer: '200 body of 10 MB', reply: { kind: 'huge' }, ...both('unusable') },
  // RFC 6749 section 5.2 codes (and their kin from section 4.1.2.1, RFC 6750 and CIS).
  { answer: '400 `invalid_grant`', reply: error(400, { error: 'invalid_grant' }), ...both('reauth') },
  {
    answer: '400 CIS `{"message","error_code":"invalid_grant"}`',
    reply: error(400, { message: 'Refresh token is not valid', error_code: 'invalid_grant' }),
    ...both('reauth'),
  },
  { answer: '401 `invalid_grant`', reply: error(401, { error: 'invalid_grant' }), ...both('reauth') },
  {
    answer: '400 `invalid_request`',
    reply: error(400, { error: 'invalid_request' }),
    ...both('configuration'),
  },
  {
    answer: '400 `invalid_client`',
    reply: error(400, { error: 'invalid_client' }),
    ...both('configuration'),
  },
  {
    answer: '401 `invalid_client`',
    reply: error(401, { error: 'invalid_client' }),
    ...both('configuration'),
  },
  {
    answer: '400 `unauthorized_client`',
    reply: error(400, { error: 'unauthorized_client' }),
    ...both('configuration'),
  },
  {
    answer: '400 `unsupported_grant_type`',
    reply: error(400, { error: 'unsupported_grant_type' }),
    ...both('configuration'),
  },
  { answer: '400 `invalid_scope`', reply: error(400, { error: 'invalid_scope' }), ...both('configuration') },
  {
    answer: '403 `insufficient_scope`',
    reply: error(403, { error: 'insufficient_scope' }),
    ...both('configuration'),
  },
  {
    answer: '400 `temporarily_unavailable`',
    reply: error(400, { error: 'temporarily_unavailable' }),
    ...both('transient (not consumed)'),
  },
  {
    answer: '400 `slow_down`',
    reply: error(400, { error: 'slow_down' }),
    ...both('transient (not consumed)'),
  },
  { answer: '400 `server_error`', reply: error(400, { error: 'server_error' }), ...both('transient') },
  { answer: '400 an unknown code', reply: error(400, { error: 'access_denied' }), ...both('transient') },
  {
    answer: '400 CIS `{"message","error_code":400}`',
    reply: error(400, { message: 'Bad Request', error_code: 400 }),
    ...both('transient'),
  },
  { answer: '400 not JSON (HTML)', reply: error(400, HTML), ...both('transient') },
  // 401 and 403: the app's client, never the user's token.
  {
    answer: '401 without a body (twice: after a fresh client token or re-read credentials)',
    reply: error(401),
    ...both('configuration'),
  },
  {
    answer: '401 CIS `{"message","error_code":401}` (twice)',
    reply: error(401, { message: 'Unauthorized', error_code: 401 }),
    ...both('configuration'),
  },
  {
    answer: '403 JSON `{"message":"Forbidden"}`',
    reply: error(403, { message: 'Forbidden' }),
    ...both('configuration'),
  },
  { answer: '403 `invalid_grant`', reply: error(403, { error: 'invalid_grant' }), ...both('configuration') },
  { answer: '403 not JSON (a WAF page)', reply: error(403, HTML), ...both('configuration') },
  // Rate limits and outages.
  {
    answer: '429 HTML from a CDN, no Retry-After',
    reply: error(429, HTML, { 'content-type': 'text/html' }),
    ...both('transient (not consumed)'),
  },
  {
    answer: '429 JSON with `Retry-After: 30`',
    reply: error(429, { error: 'slow_down' }, { 'retry-after': '30' }),
    ...both('transient (not consumed)'),
    retryAfterSeconds: 30,
  },
  {
    answer: '503 with `Retry-After: 10`',
    reply: error(503, HTML, { 'retry-after': '10' }),
    ...both('transient (not consumed)'),
    retryAfterSeconds: 10,
  },
  { answer: '503 without a body', reply: error(503), ...both('transient (not consumed)') },
  { answer: '500 JSON', reply: error(500, { message: 'Internal Server Error' }), ...both('transient') },
  { answer: '502 HTML', reply: error(502, HTML), ...both('transient') },
  { answer: '504 without a body', reply: error(504), ...both('transient') },
  { answer: '408', reply: error(408), ...both('transient') },
  {
    answer: '302 to elsewhere (not followed)',
    reply: error(302, '', { location: 'https://elsewhere.invalid/token' }),
    ...both('transient'),
  },
  { answer: '404', reply: error(404, { message: 'Not Found' }), ...both('transient') },
  // The network.
  {
    answer: 'connection refused (nothing sent)',
    reply: { kind: 'refused' },
    ...both('transient (not consumed)'),
  },
  { answer: 'accepted, never answered (timeout)', reply: { kind: 'hang' }, ...both('transient') },
  { answer: 'reset after the request was sent', reply: { kind: 'reset' }, ...both('transient') },
];

function outcomeCell(row: ConformanceRow): string {
  const outcome =
    row.transmit === row.oauth2 ? row.transmit : `Transmit: ${row.transmit}; OAuth 2.0: ${row.oauth2}`;
  return row.retryAfterSeconds === undefined ? outcome : `${outcome}, after ${row.retryAfterSeconds} s`;
}

function lifetimeCell(row: ConformanceRow): string {
  switch (row.accessLifetime) {
    case undefined:
      return '';
    case 'default':
      return '`ACCESS_TOKEN_DEFAULT_SECONDS`';
    case 'kept':
      return 'the current access token stays';
    default:
      return row.accessLifetime === WEEK ? `${WEEK} s (clamped to 7 days)` : `${row.accessLifetime} s`;
  }
}

/** The matrix as the README's markdown table. */
export function conformanceTableMarkdown(): string {
  const lines = [
    '| Answer to a refresh | Outcome (Transmit and OAuth 2.0) | Access lifetime stored |',
    '| --- | --- | --- |',
    ...CONFORMANCE_MATRIX.map((row) => `| ${row.answer} | ${outcomeCell(row)} | ${lifetimeCell(row)} |`),
  ];
  return lines.join('\n');
}

/** The outcome words with their meaning, as the README lists them. */
export function outcomeListMarkdown(): string {
  return (Object.entries(OUTCOME_MEANINGS) as [ConformanceOutcome, string][])
    .map(([outcome, meaning]) => `- **${outcome}**: ${meaning}`)
    .join('\n');
}
