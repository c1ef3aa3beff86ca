import { describe, expect, it } from 'vitest';
import {
  JwksIdTokenVerifier,
  type JwksIdTokenVerifierOptions,
} from '../../../functions/adapters/idp/jwks-verifier';
import { ConfigurationError, ValidationError } from '../../../functions/core/errors';
import { Secret } from '../../../functions/core/secret';
import { caught, shown } from '../../support/caught';

const OPTIONS: JwksIdTokenVerifierOptions = {
  jwksUrl: 'http://127.0.0.1:9/cis/oidc/jwks',
  issuer: 'https://userid.security',
  audience: 'local-client',
};

function segment(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

const CLAIMS = segment({ sub: 'user-1' });
const SIGNATURE = segment('not-a-real-signature-CANARY');
const RS256 = segment({ alg: 'RS256', kid: 'k1' });

/** A verifier whose JWKS must never be fetched: malformed tokens fail before any key lookup. */
function offlineVerifier(): { verifier: JwksIdTokenVerifier; fetches: () => number } {
  let fetches = 0;
  const verifier = new JwksIdTokenVerifier({
    ...OPTIONS,
    fetch: async () => {
      fetches += 1;
      throw new Error('the JWKS must not be fetched for a malformed token');
    },
  });
  return { verifier, fetches: () => fetches };
}

describe('Class: JwksIdTokenVerifier', () => {
  describe('Method: verify', () => {
    it.each([
      ['an empty string', '', 'id_token is not a compact JWS'],
      ['an oversized token', `${RS256}.${'A'.repeat(40_000)}.${SIGNATURE}`, 'id_token is not a compact JWS'],
      ['two parts', `${RS256}.${CLAIMS}`, 'id_token is not a compact JWS (three parts)'],
      [
        'four parts',
        `${RS256}.${CLAIMS}.${SIGNATURE}.${SIGNATURE}`,
        'id_token is not a compact JWS (three parts)',
      ],
      ['a five-part JWE', `${RS256}.a.b.c.d`, 'id_token is not a compact JWS (three parts)'],
      [
        'a header with characters outside base64url',
        `${RS256}+.${CLAIMS}.${SIGNATURE}`,
        'id_token is not valid base64url',
      ],
      ['a padded payload', `${RS256}.${CLAIMS}==.${SIGNATURE}`, 'id_token is not valid base64url'],
      ['a signature with whitespace', `${RS256}.${CLAIMS}.${SIGNATURE} `, 'id_token is not valid base64url'],
      ['non-canonical trailing bits', `${RS256}.${CLAIMS}.AB`, 'id_token is not valid base64url'],
      [
        'a non-JSON header',
        `${segment('hello')}.${CLAIMS}.${SIGNATURE}`,
        'id_token header is not a JSON object',
      ],
      [
        'a JSON array header',
        `${segment([1])}.${CLAIMS}.${SIGNATURE}`,
        'id_token header is not a JSON object',
      ],
      ['an empty header', `.${CLAIMS}.${SIGNATURE}`, 'id_token header is not a JSON object'],
      [
        'a header that is not UTF-8',
        `${Buffer.from([0xff, 0xfe, 0x7b, 0x7d]).toString('base64url')}.${CLAIMS}.${SIGNATURE}`,
        'id_token header is not a JSON object',
      ],
      [
        'a header without alg',
        `${segment({ kid: 'k1' })}.${CLAIMS}.${SIGNATURE}`,
        'id_token alg is not allowed',
      ],
      ['alg none', `${segment({ alg: 'none' })}.${CLAIMS}.`, 'id_token alg is not allowed'],
      [
        'alg HS256',
        `${segment({ alg: 'HS256', kid: 'k1' })}.${CLAIMS}.${SIGNATURE}`,
        'id_token alg is not allowed',
      ],
      [
        'a non-string alg',
        `${segment({ alg: ['RS256'] })}.${CLAIMS}.${SIGNATURE}`,
        'id_token alg is not allowed',
      ],
      [
        'a numeric kid',
        `${segment({ alg: 'RS256', kid: 7 })}.${CLAIMS}.${SIGNATURE}`,
        'id_token kid is not a string',
      ],
      [
        'a crit header',
        `${segment({ alg: 'RS256', kid: 'k1', crit: ['b64'], b64: false })}.${CLAIMS}.${SIGNATURE}`,
        'id_token header has unsupported crit parameters',
      ],
    ])('rejects %s before fetching any key', async (_name, token, message) => {
      // Prepare
      const { verifier, fetches } = offlineVerifier();

      // Act
      const error = await caught(verifier.verify(new Secret(token), 'user-1'));

      // Assess
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.message).toBe(message);
      expect(fetches()).toBe(0);
      const text = shown(error);
      for (const part of [SIGNATURE, CLAIMS, 'CANARY']) expect(text).not.toContain(part);
    });
  });

  describe('Method: constructor', () => {
    it.each([
      ['jwksUrl is not a URL', { jwksUrl: 'not a url' }, 'jwksUrl is not a valid URL'],
      ['jwksUrl is not http(s)', { jwksUrl: 'file:///etc/jwks.json' }, 'jwksUrl must be an http(s) URL'],
      ['issuer is empty', { issuer: '' }, 'issuer is required'],
      ['audience is empty', { audience: '' }, 'audience is required'],
      ['cacheTtlMs is negative', { cacheTtlMs: -1 }, 'cacheTtlMs must be a non-negative number'],
      [
        'refetchCooldownMs is NaN',
        { refetchCooldownMs: Number.NaN },
        'refetchCooldownMs must be a non-negative number',
      ],
      [
        'clockSkewSeconds is infinite',
        { clockSkewSeconds: Number.POSITIVE_INFINITY },
        'clockSkewSeconds must be a non-negative number',
      ],
      ['timeoutMs is negative', { timeoutMs: -5 }, 'timeoutMs must be a non-negative number'],
    ])('throws ConfigurationError when %s', (_name, overrides, message) => {
      // Act
      const build = () => new JwksIdTokenVerifier({ ...OPTIONS, ...overrides });

      // Assess
      expect(build).toThrow(ConfigurationError);
      expect(build).toThrow(message);
    });
  });
});
