/** Shorter values are not searched for: they could match by chance (and IdP tokens are long). */
export const MIN_CANARY_LENGTH = 12;

/** Anything with a value to search for. */
export interface Searchable {
  readonly value: string;
}

/**
 * Finds many canaries in a text in one pass: canaries are indexed by their first
 * MIN_CANARY_LENGTH characters, and each position of the text is looked up once. Linear in the
 * text, whatever the number of canaries (a run registers thousands).
 */
export class CanaryIndex<T extends Searchable> {
  private readonly heads = new Map<string, T[]>();

  constructor(canaries: Iterable<T>) {
    for (const canary of canaries) {
      if (canary.value.length < MIN_CANARY_LENGTH) continue;
      const head = canary.value.slice(0, MIN_CANARY_LENGTH);
      const list = this.heads.get(head);
      if (list) list.push(canary);
      else this.heads.set(head, [canary]);
    }
  }

  /** Number of canaries indexed. */
  get size(): number {
    let n = 0;
    for (const list of this.heads.values()) n += list.length;
    return n;
  }

  /** Every occurrence of a canary in `text`, in order. */
  find(text: string): { at: number; canary: T }[] {
    const found: { at: number; canary: T }[] = [];
    if (this.heads.size === 0) return found;
    for (let at = 0; at + MIN_CANARY_LENGTH <= text.length; at++) {
      const candidates = this.heads.get(text.slice(at, at + MIN_CANARY_LENGTH));
      if (!candidates) continue;
      for (const canary of candidates) if (text.startsWith(canary.value, at)) found.push({ at, canary });
    }
    return found;
  }
}
