// Character-level tokenizer: one token per Unicode code point (not per UTF-16 unit, so '𝄞' or '🐋' is one
// symbol). The vocabulary built from a text is its set of distinct code points sorted by numeric code point
// value (ascending; not locale order, not UTF-16 string order, which differ above U+FFFF), and token id i is
// the i-th of them. The same text therefore gives the same ids in every engine. Isomorphic: no Node imports.

/** how the tokenizer is stored in checkpoint metadata; `vocab[i]` is the symbol of token id i */
export interface CharTokenizerJSON {
  type: 'char';
  vocab: string[];
}

const hex = (cp: number): string => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;

/** a code point shown to a human: the character itself when printable, and always its U+ number */
export function describeChar(cp: number): string {
  const printable = cp > 0x20 && cp !== 0x7f && !(cp >= 0xd800 && cp <= 0xdfff);
  return printable ? `'${String.fromCodePoint(cp)}' (${hex(cp)})` : hex(cp);
}

export class CharTokenizer {
  /** symbol of each token id, one code point per entry */
  readonly vocab: readonly string[];
  /** code point → token id */
  private readonly ids: Map<number, number>;

  /** vocab in the given order (ids are positions); use `fromText` to build the canonical sorted one */
  constructor(vocab: readonly string[]) {
    if (vocab.length === 0) throw new Error('tokenizer vocabulary is empty');
    const ids = new Map<number, number>();
    vocab.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0 || s.length > 2 || [...s].length !== 1) {
        throw new Error(`tokenizer vocab[${i}] must be exactly one code point, got ${JSON.stringify(s)}`);
      }
      const cp = s.codePointAt(0)!;
      const prev = ids.get(cp);
      if (prev !== undefined) throw new Error(`tokenizer vocab[${i}] repeats vocab[${prev}]: ${describeChar(cp)}`);
      ids.set(cp, i);
    });
    this.vocab = Object.freeze([...vocab]);
    this.ids = ids;
  }

  /** the canonical vocabulary of `text`: its distinct code points in ascending code point order */
  static fromText(text: string): CharTokenizer {
    if (text.length === 0) throw new Error('cannot build a vocabulary from empty text');
    const seen = new Set<number>();
    for (const ch of text) seen.add(ch.codePointAt(0)!);
    const cps = [...seen].sort((a, b) => a - b);
    return new CharTokenizer(cps.map((cp) => String.fromCodePoint(cp)));
  }

  /** from checkpoint metadata: the object, or its JSON string */
  static fromJSON(json: unknown): CharTokenizer {
    const obj = typeof json === 'string' ? (JSON.parse(json) as unknown) : json;
    if (typeof obj !== 'object' || obj === null) throw new Error('tokenizer JSON must be an object {type, vocab}');
    const { type, vocab } = obj as Record<string, unknown>;
    if (type !== 'char') throw new Error(`unknown tokenizer type ${JSON.stringify(type)} (expected "char")`);
    if (!Array.isArray(vocab)) throw new Error('tokenizer JSON: vocab must be an array of one-character strings');
    return new CharTokenizer(vocab as string[]);
  }

  toJSON(): CharTokenizerJSON {
    return { type: 'char', vocab: [...this.vocab] };
  }

  /** V, the number of token ids */
  get size(): number {
    return this.vocab.length;
  }

  has(ch: string): boolean {
    return ch.length > 0 && this.ids.has(ch.codePointAt(0)!);
  }

  /** one id per code point; throws naming the first character that is not in the vocabulary */
  encode(text: string): Int32Array {
    const out = new Int32Array(text.length); // ≥ the number of code points; trimmed below
    let n = 0;
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      const id = this.ids.get(cp);
      if (id === undefined) {
        throw new Error(
          `character ${describeChar(cp)} at position ${n} (code point index; UTF-16 offset ` +
            `${utf16Offset(text, n)}) is not in the vocabulary of ${this.size} symbols`,
        );
      }
      out[n++] = id;
    }
    return n === out.length ? out : out.slice(0, n);
  }

  /** the text of a sequence of ids; throws on an id outside [0, V) */
  decode(ids: ArrayLike<number>): string {
    const parts = new Array<string>(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const s = this.vocab[ids[i]];
      if (s === undefined) throw new Error(`token id ${ids[i]} at position ${i} is outside the vocabulary [0, ${this.size})`);
      parts[i] = s;
    }
    return parts.join('');
  }
}

function utf16Offset(text: string, codePointIndex: number): number {
  let off = 0;
  for (let i = 0; i < codePointIndex; i++) off += text.codePointAt(off)! > 0xffff ? 2 : 1;
  return off;
}
