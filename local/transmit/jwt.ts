import { type CryptoKey, calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';

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
  readonly #privateKey: CryptoKey;
  readonly #jwk: PublicJwk;

  private constructor(privateKey: CryptoKey, jwk: PublicJwk) {
    this.#privateKey = privateKey;
    this.#jwk = jwk;
  }

  /** Makes a fresh 2048-bit key pair; its kid is the RFC 7638 thumbprint of the public key. */
  static async create(): Promise<JwtSigner> {
    // The private key stays non-extractable: only the public half is ever exported.
    const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
    const { n, e } = await exportJWK(publicKey);
    if (typeof n !== 'string' || typeof e !== 'string') throw new Error('RSA public key export lacks n or e');
    const kid = await calculateJwkThumbprint({ kty: 'RSA', n, e }, 'sha256');
    return new JwtSigner(privateKey, { kty: 'RSA', n, e, kid, alg: 'RS256', use: 'sig' });
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
  sign(claims: JwtClaims): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: this.#jwk.kid })
      .sign(this.#privateKey);
  }
}
