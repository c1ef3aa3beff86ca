import { App, Duration, RemovalPolicy } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { stackFromContext, TRANSMIT_SANDBOX_URL } from '../../lib/context';

const fromContext = (context: Record<string, unknown>) => stackFromContext(new App({ context }).node);

describe('Module: lib/context', () => {
  describe('Function: stackFromContext', () => {
    it('defaults to the Transmit sandbox, with a warning, and retains data', () => {
      const { stackId, props, warnings } = fromContext({});
      expect(stackId).toBe('TokenKeeper');
      expect(props.identityProvider).toEqual({ flavor: 'transmit', baseUrl: TRANSMIT_SANDBOX_URL });
      expect(warnings).toEqual([expect.stringContaining('Transmit sandbox')]);
      expect(props.removalPolicy).toBe(RemovalPolicy.RETAIN);
      expect(props.exampleCaller).toBe(false);
      expect(props.sweepInterval).toBeUndefined();
    });

    it('reads -c values (strings) for the IdP, alarms and tuning', () => {
      const { stackId, props, warnings } = fromContext({
        stackName: 'TokenKeeperProd',
        transmitBaseUrl: 'https://api.eu.transmitsecurity.io',
        alarmEmail: 'ops@example.com',
        serviceName: 'billing',
        sweepIntervalMinutes: '10',
        sweepReservedConcurrency: '2',
        logLevel: 'DEBUG',
        logRetentionDays: '30',
        removalPolicy: 'destroy',
        exampleCaller: 'true',
        clientCredentialsSecretArn: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:tk-AbCdEf',
        eventBusName: 'app-events',
      });
      expect(stackId).toBe('TokenKeeperProd');
      expect(warnings).toEqual([]);
      expect(props).toMatchObject({
        identityProvider: { flavor: 'transmit', baseUrl: 'https://api.eu.transmitsecurity.io' },
        alarmEmail: 'ops@example.com',
        serviceName: 'billing',
        sweepReservedConcurrency: 2,
        logLevel: 'DEBUG',
        logRetention: 30,
        removalPolicy: RemovalPolicy.DESTROY,
        exampleCaller: true,
        clientCredentialsSecretArn: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:tk-AbCdEf',
        eventBusName: 'app-events',
      });
      expect(props.sweepInterval?.toMinutes()).toBe(Duration.minutes(10).toMinutes());
    });

    it('reads cdk.json values (JSON types) too', () => {
      const { props } = fromContext({
        sweepIntervalMinutes: 30,
        exampleCaller: true,
        sweepReservedConcurrency: 'none',
      });
      expect(props.sweepInterval?.toMinutes()).toBe(30);
      expect(props.exampleCaller).toBe(true);
      expect(props.sweepReservedConcurrency).toBe(false);
    });

    it('selects the OAuth 2 flavour when a token endpoint is given', () => {
      const { props } = fromContext({
        oauth2TokenEndpoint: 'https://idp.example.com/token',
        oauth2ClientAuth: 'client_secret_post',
        oauth2RevocationEndpoint: 'https://idp.example.com/revoke',
      });
      expect(props.identityProvider).toEqual({
        flavor: 'oauth2',
        tokenEndpoint: 'https://idp.example.com/token',
        clientAuth: 'client_secret_post',
        revocationEndpoint: 'https://idp.example.com/revoke',
      });
    });

    it('reads ID-token verification, the IdP rate limit and the re-auth notice', () => {
      const { props, warnings } = fromContext({
        transmitBaseUrl: 'https://api.eu.transmitsecurity.io',
        idTokenIssuer: 'https://eu.userid.security',
        idTokenAudience: 'app-client-id',
        idpRateLimitPerSecond: '5',
        reauthSoonDays: 30,
      });
      expect(warnings).toEqual([]);
      expect(props.idTokenVerification).toEqual({
        issuer: 'https://eu.userid.security',
        audience: 'app-client-id',
      });
      expect(props.idpRateLimitPerSecond).toBe(5);
      expect(props.reauthSoon?.toDays()).toBe(30);
      expect(
        fromContext({
          idTokenJwksUrl: 'https://idp.example.com/jwks',
          idTokenIssuer: 'https://idp.example.com',
          idTokenAudience: 'c',
        }).props.idTokenVerification,
      ).toEqual({
        jwksUrl: 'https://idp.example.com/jwks',
        issuer: 'https://idp.example.com',
        audience: 'c',
      });
    });

    it('leaves ID-token verification, rate limit and re-auth notice to the construct defaults when absent', () => {
      const { props } = fromContext({});
      expect(props.idTokenVerification).toBeUndefined();
      expect(props.idpRateLimitPerSecond).toBeUndefined();
      expect(props.reauthSoon).toBeUndefined();
    });

    it('requires issuer and audience together to verify ID tokens', () => {
      expect(() => fromContext({ idTokenIssuer: 'https://userid.security' })).toThrow(
        /idTokenIssuer and idTokenAudience are both required/,
      );
      expect(() => fromContext({ idTokenJwksUrl: 'https://idp.example.com/jwks' })).toThrow(
        /idTokenIssuer and idTokenAudience/,
      );
      expect(() => fromContext({ idTokenAudience: 'c' })).toThrow(/idTokenIssuer and idTokenAudience/);
    });

    it('throws naming the key of a bad value', () => {
      expect(() => fromContext({ idpFlavor: 'oauth2' })).toThrow(/oauth2TokenEndpoint is required/);
      expect(() => fromContext({ idpFlavor: 'saml' })).toThrow(/idpFlavor must be one of/);
      expect(() => fromContext({ sweepIntervalMinutes: 'often' })).toThrow(/sweepIntervalMinutes/);
      expect(() => fromContext({ exampleCaller: 'yes' })).toThrow(/exampleCaller must be true or false/);
      expect(() => fromContext({ logRetentionDays: '10' })).toThrow(/logRetentionDays/);
      expect(() => fromContext({ removalPolicy: 'snapshot' })).toThrow(/removalPolicy/);
      expect(() => fromContext({ alarmEmail: 42 })).toThrow(/alarmEmail must be a string/);
      expect(() => fromContext({ idpRateLimitPerSecond: 'fast' })).toThrow(/idpRateLimitPerSecond/);
      expect(() => fromContext({ reauthSoonDays: '-1' })).toThrow(/reauthSoonDays/);
    });
  });
});
