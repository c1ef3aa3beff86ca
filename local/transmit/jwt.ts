import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';

/** A public RSA signing key as published in a JWKS. */
export interface PublicJwk {
  readonly kty: 'RSA';
  readonly n: string;
  readonly e: string;
  readonly kid: string;
  readonly alg: 'RS256';
  readonly use: 'sig';
}

/** JWT claims: flat strings and numbers are all this emulator needs. */
export type JwtClaims = Readonly<Record<string, string | number>>;

/** An RS256 key pair made once per server, the JWTs it signs and the JWKS that publishes it. */
export class JwtSigner {
  readonly #privateKey: KeyObject;
  readonly #jwk: PublicJwk;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const { n, e } = publicKey.export({ format: 'jwk' });
    if (typeof n !== 'string' || typeof e !== 'string') throw new Error('RSA public key export lacks n or e');
    this.#privateKey = privateKey;
    this.#jwk = { kty: 'RSA', n, e, kid: thumbprint(n, e), alg: 'RS256', use: 'sig' };
  }

  /** The key id every signed JWT carries in its header. */
  get kid(): string {
    return this.#jwk.kid;
  }

  /** The JWKS document of `GET /cis/oidc/jwks`. */
  jwks(): { keys: PublicJwk[] } {
    return { keys: [this.#jwk] };
  }

  /** Signs the claims as a compact RS256 JWT. */
  sign(claims: JwtClaims): string {
    const header = encodeSegment({ alg: 'RS256', typ: 'JWT', kid: this.#jwk.kid });
    const signingInput = `${header}.${encodeSegment(claims)}`;
    const signature = sign('sha256', Buffer.from(signingInput), this.#privateKey);
    return `${signingInput}.${signature.toString('base64url')}`;
  }
}

function encodeSegment(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** RFC 7638 thumbprint: a stable kid derived from the key itself. */
function thumbprint(n: string, e: string): string {
  // Members in lexicographic order, no whitespace, as RFC 7638 section 3 requires.
  return createHash('sha256')
    .update(JSON.stringify({ e, kty: 'RSA', n }))
    .digest('base64url');
}
