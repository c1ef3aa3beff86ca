import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Embedded, startEmbedded } from '../../local/embedded';
import { localDynamoClientAt } from '../support/dynamo';

/**
 * The embedded runtime as `npm start` runs it: the real handler modules, configured through the
 * environment, behind the local HTTP server. Also the README's curl flow, step by step.
 */
describe('Embedded runtime', () => {
  let embedded: Embedded;
  const post = async (path: string, body: unknown) => {
    const response = await fetch(`${embedded.serviceUrl}/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const itemCount = async () => {
    const client = localDynamoClientAt(embedded.dynamoEndpoint);
    // Token records only: the sweep keeps its own state item (`#meta`) in the table too.
    const result = await client.send(
      new ScanCommand({
        TableName: embedded.tableName,
        Select: 'COUNT',
        FilterExpression: 'begins_with(pk, :user)',
        ExpressionAttributeValues: { ':user': { S: 'u#' } },
      }),
    );
    client.destroy();
    return result.Count ?? 0;
  };

  beforeAll(async () => {
    embedded = await startEmbedded({ inMemory: true, servicePort: 0, transmitPort: 0, dynamoPort: 0 });
  });
  afterAll(async () => {
    await embedded?.stop();
  });

  it('runs the README flow: sign in at the emulator, store, get, force a refresh, sweep', async () => {
    // Prepare: a client token and the demo OTP sign-in, over HTTP as in the README.
    const t = embedded.transmit.baseUrl;
    const clientToken = (await fetch(`${t}/oidc/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: 'local-client',
        client_secret: 'local-secret',
      }),
    }).then((r) => r.json())) as { access_token: string };
    const signIn = (await fetch(`${t}/cis/v1/auth/otp/authenticate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${clientToken.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ identifier_type: 'email', identifier: 'demo@example.com', passcode: '123456' }),
    }).then((r) => r.json())) as Record<string, string>;

    // Act
    const stored = await post('store-tokens', { userId: 'demo@example.com', tokens: signIn });
    const cached = await post('get-access-token', { userId: 'demo@example.com' });
    const refreshed = await post('get-access-token', {
      userId: 'demo@example.com',
      minValiditySeconds: 7200,
    });
    const sweep = await post('refresh-sweep', {});

    // Assess
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject({ userId: 'demo@example.com', resource: 'default' });
    expect(stored.body.version).toBeGreaterThan(1_700_000_000_000); // starts at the sign-in time in ms
    expect(Date.parse(String(stored.body.rotationDeadline))).toBeGreaterThan(Date.now());
    expect(cached.body.accessToken).toBe(signIn.access_token);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.accessToken).not.toBe(signIn.access_token);
    expect(refreshed.body.tokenType).toBe('Bearer');
    expect(sweep.body).toEqual({
      due: 0,
      rotated: 0,
      failed: 0,
      reauthRequired: 0,
      skipped: 0,
      backlog: 0,
      rescheduled: 0,
    });
    expect(embedded.transmit.timesPresented(signIn.refresh_token ?? '')).toBe(1);
  });

  it('answers the token status on /token-status: ACTIVE after a sign-in, no token, and 404 for an unknown user', async () => {
    // Prepare
    const signIn = await embedded.transmit.signIn('status@example.com');
    await post('store-tokens', { userId: 'status@example.com', tokens: signIn });

    // Act
    const active = await post('token-status', { userId: 'status@example.com' });
    const unknown = await post('token-status', { userId: 'nobody@example.com' });

    // Assess
    expect(active.status).toBe(200);
    expect(active.body).toMatchObject({
      userId: 'status@example.com',
      resource: 'default',
      status: 'ACTIVE',
      failures: 0,
    });
    expect(active.body.offlineAccessUntil).toBe(active.body.rotationDeadline);
    const shown = JSON.stringify(active.body);
    for (const token of [signIn.access_token, signIn.refresh_token, signIn.id_token])
      expect(shown).not.toContain(token);
    expect(unknown.status).toBe(404);
    expect(unknown.body.errorType).toBe('TokenNotFoundError');
  });

  it('answers TokenNotFoundError with 404 for an unknown user', async () => {
    const answer = await post('get-access-token', { userId: 'nobody' });
    expect(answer.status).toBe(404);
    expect(answer.body.errorType).toBe('TokenNotFoundError');
  });

  describe('bad input to every handler gets ValidationError and writes nothing', () => {
    const valid = {
      userId: 'bad-input-user',
      tokens: { access_token: 'a', refresh_token: 'r', token_type: 'Bearer', expires_in: 3600 },
    };
    const storeCases: [string, unknown][] = [
      ['not an object', 'null'],
      ['an array', []],
      ['missing userId', { tokens: valid.tokens }],
      ['empty userId', { ...valid, userId: '' }],
      ['numeric userId', { ...valid, userId: 42 }],
      ['huge userId', { ...valid, userId: 'u'.repeat(10_000) }],
      ['missing tokens', { userId: 'x' }],
      ['missing refresh_token', { ...valid, tokens: { ...valid.tokens, refresh_token: undefined } }],
      ['empty access_token', { ...valid, tokens: { ...valid.tokens, access_token: '' } }],
      ['negative expires_in', { ...valid, tokens: { ...valid.tokens, expires_in: -1 } }],
      ['zero expires_in', { ...valid, tokens: { ...valid.tokens, expires_in: 0 } }],
      ['fractional expires_in', { ...valid, tokens: { ...valid.tokens, expires_in: 1.5 } }],
      ['absurd expires_in', { ...valid, tokens: { ...valid.tokens, expires_in: 1e12 } }],
      ['string expires_in', { ...valid, tokens: { ...valid.tokens, expires_in: '3600' } }],
      ['huge refresh_token', { ...valid, tokens: { ...valid.tokens, refresh_token: 'r'.repeat(100_000) } }],
      ['authenticatedAt in milliseconds', { ...valid, authenticatedAt: Date.now() }],
      ['authenticatedAt not a date', { ...valid, authenticatedAt: 'yesterday' }],
      [
        'authenticatedAt in the future',
        { ...valid, authenticatedAt: Math.floor(Date.now() / 1000) + 86_400 },
      ],
      ['empty resource', { ...valid, resource: '' }],
    ];
    it.each(storeCases)('store-tokens: %s', async (_name, event) => {
      const before = await itemCount();
      const answer = await post('store-tokens', event);
      expect(answer.status).toBe(400);
      expect(answer.body.errorType).toBe('ValidationError');
      expect(await itemCount()).toBe(before);
    });

    const getCases: [string, unknown][] = [
      ['no userId', {}],
      ['userId with a control character', { userId: 'a\u0000b' }],
      ['negative minValiditySeconds', { userId: 'x', minValiditySeconds: -5 }],
      ['string minValiditySeconds', { userId: 'x', minValiditySeconds: '60' }],
      ['absurd minValiditySeconds', { userId: 'x', minValiditySeconds: 1e9 }],
    ];
    it.each(getCases)('get-access-token: %s', async (_name, event) => {
      const before = await itemCount();
      const answer = await post('get-access-token', event);
      expect(answer.status).toBe(400);
      expect(answer.body.errorType).toBe('ValidationError');
      expect(await itemCount()).toBe(before);
    });

    it('a body that is not JSON', async () => {
      const answer = await post('store-tokens', '{not json');
      expect(answer.status).toBe(400);
      expect(answer.body.errorType).toBe('ValidationError');
    });

    it('an error message never echoes a token value', async () => {
      const canary = 'canary-refresh-token-value-0123456789';
      const answer = await post('store-tokens', {
        ...valid,
        tokens: { ...valid.tokens, refresh_token: canary, expires_in: -1 },
      });
      expect(JSON.stringify(answer.body)).not.toContain(canary);
    });
  });
});
