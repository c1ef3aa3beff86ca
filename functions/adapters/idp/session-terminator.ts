import type { StoredTokens } from '../../core/model';
import type { SessionTerminator, TerminationOutcome } from '../../core/ports';
import type { OAuth2IdentityProvider } from './oauth2';
import type { TransmitIdentityProvider } from './transmit';

/** Transmit: log the stored session out, which revokes every refresh token of that session. */
export class TransmitSessionTerminator implements SessionTerminator {
  constructor(private readonly transmit: () => TransmitIdentityProvider) {}

  async terminate(tokens: StoredTokens, options: { timeoutMs: number }): Promise<TerminationOutcome> {
    if (!tokens.sessionId) return 'not_supported';
    return this.transmit().logout(tokens.sessionId, options);
  }
}

/** OAuth 2.0: revoke the refresh token (RFC 7009) where the server has an endpoint for it. */
export class OAuth2SessionTerminator implements SessionTerminator {
  constructor(private readonly oauth2: () => OAuth2IdentityProvider) {}

  async terminate(tokens: StoredTokens, options: { timeoutMs: number }): Promise<TerminationOutcome> {
    const provider = this.oauth2();
    if (!provider.supportsRevocation) return 'not_supported';
    await provider.revoke(tokens.refreshToken, {
      timeoutMs: options.timeoutMs,
      tokenTypeHint: 'refresh_token',
    });
    return 'revoked';
  }
}
