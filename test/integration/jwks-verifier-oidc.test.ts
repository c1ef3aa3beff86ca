import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwksIdTokenVerifier } from '../../functions/adapters/idp/jwks-verifier';
import { ValidationError } from '../../functions/core/errors';
import { Secret } from '../../functions/core/secret';
import { caught, shown } from '../support/caught';
import { type OidcServer, startOidcServer } from '../support/oidc-server';

// ID tokens from an issuer that is not ours (oidc-provider, its own keys and signer), so the
// verifier is not only ever checked against tokens the project signed itself.

const USER = 'user-oidc-CANARY-51c2';

let server: OidcServer;

beforeAll(async () => {
  server = await startOidcServer();
});

afterAll(async () => {
  await server.close();
});

function verifier(overrides: { issuer?: string; audience?: string } = {}): JwksIdTokenVerifier {
  return new JwksIdTokenVerifier({
    jwksUrl: server.jwksUri,
    issuer: overrides.issuer ?? server.issuer,
    audience: overrides.audience ?? server.clientId,
  });
}

async function signedInIdToken(userId = USER): Promise<string> {
  const { id_token: idToken } = await server.signIn(userId);
  if (idToken === undefined) throw new Error('oidc-provider issued no id_token');
  return idToken;
}

/** The id_token of a refresh_token grant, over HTTP at the server's token endpoint. */
async function refreshedIdToken(): Promise<string> {
  const { refresh_token: refreshToken } = await server.signIn(USER);
  const credentials = `${encodeURIComponent(server.clientId)}:${encodeURIComponent(server.clientSecret)}`;
  const response = await fetch(server.tokenEndpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  const body = (await response.json()) as { id_token?: unknown };
  if (response.status !== 200 || typeof body.id_token !== 'string') {
    throw new Error(`refresh answered ${response.status} without an id_token`);
  }
  return body.id_token;
}

async function expectInvalid(promise: Promise<void>, idToken: string, message: string): Promise<void> {
  const error = await caught(promise);
  expect(error).toBeInstanceOf(ValidationError);
  expect(error.message).toBe(message);
  const text = shown(error);
  for (const part of idToken.split('.')) expect(text).not.toContain(part);
  expect(text).not.toContain(USER);
}

describe('Class: JwksIdTokenVerifier, against oidc-provider', () => {
  describe('Method: verify', () => {
    it('accepts the ID token of a sign-in', async () => {
      // Prepare
      const idToken = await signedInIdToken();

      // Act
      const verify = verifier().verify(new Secret(idToken), USER);

      // Assess
      await expect(verify).resolves.toBeUndefined();
    });

    it('accepts the ID token of a refresh_token grant answered over HTTP', async () => {
      // Prepare
      const idToken = await refreshedIdToken();

      // Act
      const verify = verifier().verify(new Secret(idToken), USER);

      // Assess
      await expect(verify).resolves.toBeUndefined();
    });

    it('rejects the token of another user', async () => {
      // Prepare
      const idToken = await signedInIdToken('someone-else');

      // Act
      const verify = verifier().verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token sub does not match userId');
    });

    it('rejects a token issued to another client (aud)', async () => {
      // Prepare
      const idToken = await signedInIdToken();

      // Act
      const verify = verifier({ audience: server.clients.post.id }).verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token aud does not include the audience');
    });

    it('rejects a token when another issuer is expected', async () => {
      // Prepare
      const idToken = await signedInIdToken();

      // Act
      const verify = verifier({ issuer: 'https://issuer.example' }).verify(new Secret(idToken), USER);

      // Assess
      await expectInvalid(verify, idToken, 'id_token iss does not match the issuer');
    });
  });

  describe('Method: verify, ES256', () => {
    let ecServer: OidcServer;

    beforeAll(async () => {
      ecServer = await startOidcServer({ idTokenAlg: 'ES256' });
    });

    afterAll(async () => {
      await ecServer.close();
    });

    it('accepts an ES256 ID token signed with the P-256 key', async () => {
      // Prepare
      const { id_token: idToken } = await ecServer.signIn(USER);
      if (idToken === undefined) throw new Error('oidc-provider issued no id_token');
      const header = JSON.parse(Buffer.from(idToken.split('.')[0] ?? '', 'base64url').toString()) as {
        alg: string;
      };

      // Act
      const verify = new JwksIdTokenVerifier({
        jwksUrl: ecServer.jwksUri,
        issuer: ecServer.issuer,
        audience: ecServer.clientId,
      }).verify(new Secret(idToken), USER);

      // Assess
      expect(header.alg).toBe('ES256');
      await expect(verify).resolves.toBeUndefined();
    });
  });
});
