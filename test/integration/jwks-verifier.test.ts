import { createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  JwksIdTokenVerifier,
  type JwksIdTokenVerifierOptions,
} from '../../functions/adapters/idp/jwks-verifier';
import { RefreshUnavailableError, ValidationError } from '../../functions/core/errors';
import { Secret } from '../../functions/core/secret';
import { startTransmitServer, type TransmitServer } from '../../local/transmit-server';
import { caught, shown } from '../support/caught';
import { ManualClock } from '../support/idp-http-server';

const NOW_MS = Date.UTC(2026, 0, 15, 12);
const NOW_S = NOW_MS / 1000;
const HOUR_MS = 3_600_000;
const USER = 'user-CANARY-7f3a';
const CLIENT_ID = 'local-client';
const JWKS_PATH = '/cis/oidc/jwks';

// Keys the tests sign with themselves, published next to the emulator's key by a wrapping fetch.
const crafted = {
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ec: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  attacker: generateKeyPairSync('rsa', { modulusLength: 2048 }),
};
const RSA_KID = 'crafted-rsa';
const EC_KID = 'crafted-ec';

let server: TransmitServer;
let emulatorClock: ManualClock;
let clock: ManualClock;

beforeAll(async () => {
  emulatorClock = new ManualClock(NOW_MS);
  server = await startTransmitServer({ clock: emulatorClock });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  emulatorClock = new ManualClock(NOW_MS);
  clock = new ManualClock(NOW_MS);
  // jose times the JWKS cache and the refetch cooldown with Date.now(): only Date is faked.
  vi.useFakeTimers({ toFake: ['Date'], now: NOW_MS });
});

afterEach(() => {
  vi.useRealTimers();
});

/** Moves both the verifier's clock (claims) and the system clock (JWKS cache, cooldown). */
function elapse(ms: number): void {
  clock.advance(ms);
  vi.setSystemTime(Date.now() + ms);
}

/** Runs `act` against a second emulator whose clock reads `nowMs` (same issuer as the main one), then closes it. */
async function withEmulatorAt(
  nowMs: number,
  act: (other: TransmitServer, jwksUrl: string) => Promise<void>,
): Promise<void> {
  const other = await startTransmitServer({ clock: new ManualClock(nowMs), issuer: server.baseUrl });
  try {
    await act(other, `${other.baseUrl}${JWKS_PATH}`);
  } finally {
    await other.close();
  }
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const address = probe.address();
  await new Promise<void>((done) => probe.close(() => done()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

interface CountingFetch {
  readonly fetch: typeof fetch;
  /** JWKS requests sent so far. */
  calls(): number;
}

/** Passes every request to the real fetch and counts it; optionally adds keys to the JWKS it returns. */
function countingFetch(extraKeys: readonly object[] = []): CountingFetch {
  let calls = 0;
  return {
    calls: () => calls,
    fetch: async (input, init) => {
      calls += 1;
      const response = await fetch(input, init);
      if (extraKeys.length === 0 || response.status !== 200) return response;
      const jwks = (await response.json()) as { keys: object[] };
      return Response.json({ keys: [...jwks.keys, ...extraKeys] });
    },
  };
}

function publicJwk(key: KeyObject, kid: string): object {
  return { ...key.export({ format: 'jwk' }), kid, use: 'sig' };
}

const CRAFTED_KEYS = [publicJwk(crafted.rsa.publicKey, RSA_KID), publicJwk(crafted.ec.publicKey, EC_KID)];

function verifier(options: Partial<JwksIdTokenVerifierOptions> = {}): JwksIdTokenVerifier {
  return new JwksIdTokenVerifier({
    jwksUrl: `${server.baseUrl}${JWKS_PATH}`,
    issuer: server.baseUrl,
    audience: CLIENT_ID,
    clock,
    ...options,
  });
}

function segment(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A compact JWS over `header` and `claims`, signed by `signer` (which sees the signing input). */
function craft(header: object, claims: object, signer: (input: Buffer) => Buffer): string {
  const input = `${segment(header)}.${segment(claims)}`;
  return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
}

function rs256(claims: object, header: object = {}, key: KeyObject = crafted.rsa.privateKey): string {
  return craft({ alg: 'RS256', typ: 'JWT', kid: RSA_KID, ...header }, claims, (input) =>
    sign('sha256', input, key),
  );
}

function es256(claims: object, dsaEncoding: 'ieee-p1363' | 'der' = 'ieee-p1363'): string {
  return craft({ alg: 'ES256', typ: 'JWT', kid: EC_KID }, claims, (input) =>
    sign('sha256', input, { key: crafted.ec.privateKey, dsaEncoding }),
  );
}

/** The claims the emulator would put in an ID token for USER, now. */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: server.baseUrl, aud: CLIENT_ID, sub: USER, iat: NOW_S, exp: NOW_S + 3600, ...overrides };
}

async function idTokenFor(userId = USER, emulator: TransmitServer = server): Promise<string> {
  const idToken = (await emulator.signIn(userId)).id_token;
  expect(idToken).toEqual(expect.any(String));
  return idToken;
}

/** Replaces one character inside `part` (0 header, 1 payload, 2 signature), away from its ends, so it stays canonical base64url. */
function flipChar(token: string, part: 0 | 1 | 2): string {
  const parts = token.split('.');
  const target = parts[part] ?? '';
  const at = Math.floor(target.length / 2);
  const replacement = target[at] === 'A' ? 'B' : 'A';
  parts[part] = `${target.slice(0, at)}${replacement}${target.slice(at + 1)}`;
  return parts.join('.');
}

/** Asserts a ValidationError with exactly `message`, and that nothing of the token shows in it. */
async function expectInvalid(promise: Promise<void>, token: string, message: string): Promise<void> {
  const error = await caught(promise);
  expect(error).toBeInstanceOf(ValidationError);
  expect(error.message).toBe(message);
  expectNoLeak(error, token);
}

function expectNoLeak(error: Error, token: string): void {
  const text = shown(error);
  expect(text).not.toContain(token);
  for (const part of token.split('.').filter((p) => p.length > 8)) expect(text).not.toContain(part);
  expect(text).not.toContain(USER);
}

describe('Class: JwksIdTokenVerifier', () => {
  describe('Method: verify', () => {
    it('accepts an ID token the emulator signed for the user', async () => {
      // Prepare
      const jwks = countingFetch();
      const idToken = await idTokenFor();

      // Act
      const result = await verifier({ fetch: jwks.fetch }).verify(new Secret(idToken), USER);

      // Assess
      expect(result).toBeUndefined();
      expect(jwks.calls()).toBe(1);
    });

    it('accepts an emulator token whose issuer is configured (issuer option)', async () => {
      // Prepare
      const issuer = 'https://userid.security';
      const other = await startTransmitServer({ clock: emulatorClock, issuer });
      try {
        const idToken = await idTokenFor(USER, other);

        // Act
        const pass = verifier({ jwksUrl: `${other.baseUrl}${JWKS_PATH}`, issuer }).verify(
          new Secret(idToken),
          USER,
        );

        // Assess
        await expect(pass).resolves.toBeUndefined();
      } finally {
        await other.close();
      }
    });

    it('rejects a token issued for another user (sub)', async () => {
      // Prepare
      const idToken = await idTokenFor('someone-else');

      // Act
      const verify = verifier().verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token sub does not match userId');
    });

    it('rejects a token from another issuer', async () => {
      // Prepare
      const idToken = await idTokenFor();

      // Act
      const verify = verifier({ issuer: 'https://userid.security' }).verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token iss does not match the issuer');
      expect(shown(await caught(verify))).not.toContain(server.baseUrl);
    });

    it('rejects a token for another audience', async () => {
      // Prepare
      const idToken = await idTokenFor();

      // Act
      const verify = verifier({ audience: 'other-client' }).verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token aud does not include the audience');
    });

    it('accepts an aud array that includes the audience, and rejects one that does not', async () => {
      // Prepare
      const jwks = countingFetch(CRAFTED_KEYS);
      const subject = verifier({ fetch: jwks.fetch });
      const included = rs256(claims({ aud: ['api://other', CLIENT_ID] }));
      const excluded = rs256(claims({ aud: ['api://other', 'api://third'] }));

      // Act & Assess: one after the other, so that no rejection waits unobserved.
      await expect(subject.verify(new Secret(included), USER)).resolves.toBeUndefined();
      await expectInvalid(
        subject.verify(new Secret(excluded), USER),
        excluded,
        'id_token aud does not include the audience',
      );
    });

    it('rejects a token whose azp names another party', async () => {
      // Prepare
      const idToken = rs256(claims({ aud: [CLIENT_ID, 'api://other'], azp: 'api://other' }));

      // Act
      const verify = verifier({ fetch: countingFetch(CRAFTED_KEYS).fetch }).verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token azp does not match the audience');
    });

    it('rejects a token past exp beyond the skew, and accepts one within it (verifier clock ahead)', async () => {
      // Prepare
      const idToken = await idTokenFor();
      const subject = verifier();
      clock.advance(HOUR_MS + 59_000);

      // Act
      const withinSkew = subject.verify(new Secret(idToken), USER);

      // Assess
      await expect(withinSkew).resolves.toBeUndefined();
      clock.advance(2_000);
      await expectInvalid(subject.verify(new Secret(idToken), USER), idToken, 'id_token has expired');
    });

    it('rejects a token the emulator minted two hours ago', async () => {
      await withEmulatorAt(NOW_MS - 2 * HOUR_MS, async (past, jwksUrl) => {
        // Prepare
        const idToken = await idTokenFor(USER, past);

        // Act
        const verify = verifier({ jwksUrl }).verify(new Secret(idToken), USER);

        // Assess
        await expectInvalid(verify, idToken, 'id_token has expired');
      });
    });

    it('rejects a token issued in the future beyond the skew (iat)', async () => {
      await withEmulatorAt(NOW_MS + 5 * 60_000, async (ahead, jwksUrl) => {
        // Prepare
        const idToken = await idTokenFor(USER, ahead);

        // Act
        const verify = verifier({ jwksUrl }).verify(new Secret(idToken), USER);

        // Assess
        await expectInvalid(verify, idToken, 'id_token iat is in the future');
      });
    });

    it('accepts a token issued slightly in the future, within the skew (verifier clock behind)', async () => {
      // Prepare
      const idToken = await idTokenFor();

      // Act
      const verify = verifier({ clock: new ManualClock(NOW_MS - 30_000) }).verify(new Secret(idToken), USER);

      // Assess
      await expect(verify).resolves.toBeUndefined();
    });

    it('rejects a token whose nbf is in the future beyond the skew', async () => {
      // Prepare
      const idToken = rs256(claims({ nbf: NOW_S + 120 }));

      // Act
      const verify = verifier({ fetch: countingFetch(CRAFTED_KEYS).fetch }).verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token is not yet valid (nbf)');
    });

    it('rejects a token without a numeric exp', async () => {
      // Prepare
      const subject = verifier({ fetch: countingFetch(CRAFTED_KEYS).fetch });
      const missing = rs256(claims({ exp: undefined }));
      const text = rs256(claims({ exp: String(NOW_S + 3600) }));

      // Act & Assess: one after the other, so that no rejection waits unobserved.
      await expectInvalid(
        subject.verify(new Secret(missing), USER),
        missing,
        'id_token exp is missing or not a number',
      );
      await expectInvalid(
        subject.verify(new Secret(text), USER),
        text,
        'id_token exp is missing or not a number',
      );
    });

    it('rejects a token whose payload was tampered with (signature check)', async () => {
      // Prepare
      const idToken = flipChar(await idTokenFor(), 1);

      // Act
      const verify = verifier().verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token signature is invalid');
    });

    it('rejects a token whose payload was swapped for another user while keeping the signature', async () => {
      // Prepare
      const [header, , signature] = (await idTokenFor('someone-else')).split('.');
      const idToken = `${header}.${segment(claims())}.${signature}`;

      // Act
      const verify = verifier().verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token signature is invalid');
    });

    it('rejects a token whose signature was tampered with', async () => {
      // Prepare
      const idToken = flipChar(await idTokenFor(), 2);

      // Act
      const verify = verifier().verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token signature is invalid');
    });

    it('rejects an unsigned token (alg none) without fetching the JWKS', async () => {
      // Prepare
      const jwks = countingFetch();
      const [, payload] = (await idTokenFor()).split('.');
      const unsigned = [
        `${segment({ alg: 'none', typ: 'JWT' })}.${payload}.`,
        `${segment({ alg: 'None' })}.${payload}.`,
      ];

      // Act
      const subject = verifier({ fetch: jwks.fetch });

      // Assess
      for (const idToken of unsigned) {
        await expectInvalid(
          subject.verify(new Secret(idToken), USER),
          idToken,
          'id_token alg is not allowed',
        );
      }
      expect(jwks.calls()).toBe(0);
    });

    it.each(['HS256', 'HS384', 'HS512', 'RS512', 'PS256', 'ES384', 'EdDSA'])(
      'rejects a %s token HMAC-signed with the public key (algorithm confusion)',
      async (alg) => {
        // Prepare
        const jwks = (await (await fetch(`${server.baseUrl}${JWKS_PATH}`)).json()) as {
          keys: { kid: string; n: string }[];
        };
        const published = jwks.keys[0];
        expect(published).toBeDefined();
        const idToken = craft({ alg, typ: 'JWT', kid: published?.kid }, claims(), (input) =>
          createHmac('sha256', published?.n ?? '')
            .update(input)
            .digest(),
        );

        // Act
        const verify = verifier().verify(new Secret(idToken), USER);

        // Assess
        await expectInvalid(verify, idToken, 'id_token alg is not allowed');
      },
    );

    it('accepts an ES256 token whose key is in the JWKS', async () => {
      // Prepare
      const idToken = es256(claims());

      // Act
      const verify = verifier({ fetch: countingFetch(CRAFTED_KEYS).fetch }).verify(new Secret(idToken), USER);

      // Assess
      await expect(verify).resolves.toBeUndefined();
    });

    it('rejects an ES256 signature in DER instead of the JWS r||s form', async () => {
      // Prepare
      const idToken = es256(claims(), 'der');

      // Act
      const verify = verifier({ fetch: countingFetch(CRAFTED_KEYS).fetch }).verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token signature is invalid');
    });

    it('does not use an RSA key for an ES256 token that names it (kid/alg mismatch)', async () => {
      // Prepare
      const idToken = craft({ alg: 'ES256', kid: RSA_KID }, claims(), (input) =>
        sign('sha256', input, { key: crafted.ec.privateKey, dsaEncoding: 'ieee-p1363' }),
      );

      // Act
      const verify = verifier({ fetch: countingFetch(CRAFTED_KEYS).fetch }).verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token kid is not in the JWKS');
    });

    it('ignores a key embedded in the header (jwk) and checks the JWKS key', async () => {
      // Prepare
      const emulatorKid = (
        JSON.parse(Buffer.from((await idTokenFor()).split('.')[0] ?? '', 'base64url').toString()) as {
          kid: string;
        }
      ).kid;
      const idToken = rs256(
        claims(),
        { kid: emulatorKid, jwk: publicJwk(crafted.attacker.publicKey, emulatorKid) },
        crafted.attacker.privateKey,
      );

      // Act
      const verify = verifier().verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token signature is invalid');
    });

    it('uses the only key for the alg when the token names no kid, and refuses to guess among several', async () => {
      // Prepare
      const idToken = rs256(claims(), { kid: undefined });
      const single: typeof fetch = async () =>
        Response.json({ keys: [publicJwk(crafted.rsa.publicKey, RSA_KID)] });

      // Act: one after the other, so that no rejection waits unobserved while the other is awaited.
      const withOneKey = verifier({ fetch: single }).verify(new Secret(idToken), USER);
      await expect(withOneKey).resolves.toBeUndefined();
      const withTwoKeys = verifier({ fetch: countingFetch(CRAFTED_KEYS).fetch }).verify(
        new Secret(idToken),
        USER,
      );

      // Assess
      await expectInvalid(withTwoKeys, idToken, 'id_token kid is not in the JWKS');
    });

    it('refetches the JWKS for an unknown kid only when the last fetch is older than the cooldown', async () => {
      // Prepare
      const jwks = countingFetch();
      const subject = verifier({ fetch: jwks.fetch, refetchCooldownMs: 60_000 });
      await subject.verify(new Secret(await idTokenFor()), USER);
      const unknown = rs256(claims(), { kid: 'rotated-away' });

      // Act
      await expectInvalid(
        subject.verify(new Secret(unknown), USER),
        unknown,
        'id_token kid is not in the JWKS',
      );
      const rightAfterFetch = jwks.calls();
      elapse(60_000);
      await expectInvalid(
        subject.verify(new Secret(unknown), USER),
        unknown,
        'id_token kid is not in the JWKS',
      );
      const afterCooldown = jwks.calls();
      elapse(59_000);
      await expectInvalid(
        subject.verify(new Secret(unknown), USER),
        unknown,
        'id_token kid is not in the JWKS',
      );
      const withinCooldown = jwks.calls();
      elapse(1_000);
      await expectInvalid(
        subject.verify(new Secret(unknown), USER),
        unknown,
        'id_token kid is not in the JWKS',
      );

      // Assess: a JWKS fetched a moment ago cannot know more; forged kids cost one fetch per cooldown.
      expect(rightAfterFetch).toBe(1);
      expect(afterCooldown).toBe(2);
      expect(withinCooldown).toBe(2);
      expect(jwks.calls()).toBe(3);
    });

    it('picks up a rotated key with one refetch', async () => {
      // Prepare: the first JWKS only has the old (crafted) key; the emulator's key appears later.
      let rotated = false;
      let calls = 0;
      const rotatingFetch: typeof fetch = async (input, init) => {
        calls += 1;
        if (!rotated) return Response.json({ keys: [publicJwk(crafted.rsa.publicKey, RSA_KID)] });
        return fetch(input, init);
      };
      const subject = verifier({ fetch: rotatingFetch, refetchCooldownMs: 60_000 });
      await subject.verify(new Secret(rs256(claims())), USER);
      rotated = true;
      elapse(60_000);

      // Act
      const verify = subject.verify(new Secret(await idTokenFor()), USER);

      // Assess
      await expect(verify).resolves.toBeUndefined();
      expect(calls).toBe(2);
    });

    it('shares one refetch among concurrent callers that see the same new kid', async () => {
      // Prepare
      let rotated = false;
      let calls = 0;
      const rotatingFetch: typeof fetch = async (input, init) => {
        calls += 1;
        if (!rotated) return Response.json({ keys: [publicJwk(crafted.rsa.publicKey, RSA_KID)] });
        return fetch(input, init);
      };
      const subject = verifier({ fetch: rotatingFetch, refetchCooldownMs: 60_000 });
      await subject.verify(new Secret(rs256(claims())), USER);
      rotated = true;
      elapse(60_000);
      const idToken = await idTokenFor();

      // Act
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () => subject.verify(new Secret(idToken), USER)),
      );

      // Assess
      expect(results.map((result) => result.status)).toEqual(Array(10).fill('fulfilled'));
      expect(calls).toBe(2);
    });

    it('caches the JWKS across verifications until cacheTtlMs has passed', async () => {
      // Prepare
      const jwks = countingFetch();
      const subject = verifier({ fetch: jwks.fetch, cacheTtlMs: HOUR_MS });
      const idToken = await idTokenFor();

      // Act
      for (let i = 0; i < 20; i += 1) await subject.verify(new Secret(idToken), USER);
      const withinTtl = jwks.calls();
      elapse(HOUR_MS - 120_000);
      await subject.verify(new Secret(idToken), USER);
      elapse(120_000);
      await subject.verify(new Secret(await idTokenFor()), USER);

      // Assess
      expect(withinTtl).toBe(1);
      expect(jwks.calls()).toBe(2);
    });

    it('shares one JWKS fetch among concurrent callers on a cold cache', async () => {
      // Prepare
      const jwks = countingFetch();
      const subject = verifier({ fetch: jwks.fetch });
      const idToken = await idTokenFor();

      // Act
      await Promise.all(Array.from({ length: 10 }, () => subject.verify(new Secret(idToken), USER)));

      // Assess
      expect(jwks.calls()).toBe(1);
    });

    it('throws RefreshUnavailableError with the network error as cause when the JWKS endpoint is down', async () => {
      // Prepare
      const jwksUrl = `http://127.0.0.1:${await closedPort()}${JWKS_PATH}`;
      const idToken = await idTokenFor();

      // Act
      const error = await caught(verifier({ jwksUrl }).verify(new Secret(idToken), USER));

      // Assess
      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect(error.message).toBe('JWKS fetch failed: network error');
      expect((error as RefreshUnavailableError).retryable).toBe(true);
      expect(error.cause).toBeInstanceOf(TypeError);
      expectNoLeak(error, idToken);
    });

    it('throws RefreshUnavailableError when the JWKS endpoint answers 404', async () => {
      // Prepare
      const idToken = await idTokenFor();

      // Act
      const error = await caught(
        verifier({ jwksUrl: `${server.baseUrl}/cis/oidc/no-such-jwks` }).verify(new Secret(idToken), USER),
      );

      // Assess
      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect(error.message).toBe('JWKS fetch failed: HTTP 404');
      expect(error.cause).toBeInstanceOf(Response);
      expectNoLeak(error, idToken);
    });

    it.each([
      ['not JSON', () => new Response('<html>maintenance</html>'), 'JWKS is malformed: not JSON'],
      ['without a keys array', () => Response.json({ keys: 'none' }), 'JWKS is malformed: no keys array'],
      ['an array', () => Response.json([]), 'JWKS is malformed: no keys array'],
      [
        'without a usable key',
        () =>
          Response.json({
            keys: [
              { kty: 'oct', k: 'c2VjcmV0' },
              { kty: 'RSA', n: 'AQAB', e: 'AQAB' },
            ],
          }),
        'JWKS is malformed: no usable signing key',
      ],
    ])('throws RefreshUnavailableError for a JWKS %s', async (_name, answer, message) => {
      // Prepare
      const idToken = await idTokenFor();

      // Act
      const error = await caught(verifier({ fetch: async () => answer() }).verify(new Secret(idToken), USER));

      // Assess
      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect(error.message).toBe(message);
      expectNoLeak(error, idToken);
    });

    it('keeps the parser error as cause of a non-JSON JWKS', async () => {
      // Act
      const error = await caught(
        verifier({ fetch: async () => new Response('{') }).verify(new Secret(await idTokenFor()), USER),
      );

      // Assess
      expect(error.cause).toBeInstanceOf(SyntaxError);
      expect(JSON.stringify(error)).toBe(
        JSON.stringify({ name: 'RefreshUnavailableError', message: error.message }),
      );
    });

    it('throws RefreshUnavailableError when the JWKS request exceeds timeoutMs', async () => {
      // Prepare: a fetch that never answers, only gives up when aborted.
      const hanging: typeof fetch = (_input, init) =>
        new Promise((_resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(init.signal?.reason));
        });

      // Act
      const error = await caught(
        verifier({ fetch: hanging, timeoutMs: 10 }).verify(new Secret(await idTokenFor()), USER),
      );

      // Assess
      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect(error.message).toBe('JWKS fetch failed: timed out');
      expect((error.cause as Error).name).toBe('TimeoutError');
    });

    it('does not cache a failed JWKS fetch: the next verification fetches again and passes', async () => {
      // Prepare
      let calls = 0;
      const flaky: typeof fetch = async (input, init) => {
        calls += 1;
        return calls === 1 ? new Response('busy', { status: 503 }) : fetch(input, init);
      };
      const subject = verifier({ fetch: flaky });
      const idToken = await idTokenFor();
      const first = await caught(subject.verify(new Secret(idToken), USER));

      // Act
      const second = subject.verify(new Secret(idToken), USER);

      // Assess
      expect(first).toBeInstanceOf(RefreshUnavailableError);
      expect(first.message).toBe('JWKS fetch failed: HTTP 503');
      await expect(second).resolves.toBeUndefined();
      expect(calls).toBe(2);
    });

    it('never shows the token, its parts or claim values in any error message, JSON or inspect output', async () => {
      // Prepare
      const idToken = await idTokenFor();
      const [header, payload, signature] = idToken.split('.') as [string, string, string];
      const subject = verifier({ fetch: countingFetch(CRAFTED_KEYS).fetch });
      const attempts: [string, Promise<void>][] = [
        [idToken, subject.verify(new Secret(idToken), 'someone-else')],
        [idToken, verifier({ issuer: 'https://x.example' }).verify(new Secret(idToken), USER)],
        [idToken, verifier({ audience: 'x' }).verify(new Secret(idToken), USER)],
        [flipChar(idToken, 1), subject.verify(new Secret(flipChar(idToken, 1)), USER)],
        [flipChar(idToken, 2), subject.verify(new Secret(flipChar(idToken, 2)), USER)],
        [`${header}.${payload}`, subject.verify(new Secret(`${header}.${payload}`), USER)],
        [
          `${header}.${payload}.${signature}.x`,
          subject.verify(new Secret(`${header}.${payload}.${signature}.x`), USER),
        ],
        [
          `${header}.!${payload}.${signature}`,
          subject.verify(new Secret(`${header}.!${payload}.${signature}`), USER),
        ],
        [
          `${payload}.${payload}.${signature}`,
          subject.verify(new Secret(`${payload}.${payload}.${signature}`), USER),
        ],
        [idToken, verifier({ jwksUrl: `${server.baseUrl}/nope` }).verify(new Secret(idToken), USER)],
      ];

      // Act
      const errors = await Promise.all(
        attempts.map(async ([token, attempt]) => [token, await caught(attempt)] as const),
      );

      // Assess
      expect(errors).toHaveLength(attempts.length);
      for (const [token, error] of errors) {
        expectNoLeak(error, token);
        expectNoLeak(error, idToken);
        for (const part of [header, payload, signature]) expect(JSON.stringify(error)).not.toContain(part);
        expect(error.message).toMatch(/^(id_token |JWKS )/);
      }
    });
  });
});
