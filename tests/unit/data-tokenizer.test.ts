// Char tokenizer: round trips any Unicode text by code point, builds the same vocabulary from the same text
// whatever its order of appearance, survives checkpoint JSON, and names the character it cannot encode.
import { describe, expect, it } from 'vitest';
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';

/** random text over all planes (surrogate code points excluded: they are not characters) */
function randomText(rng: Rng, n: number): string {
  const cps: number[] = [];
  for (let i = 0; i < n; i++) {
    const plane = rng.int(4);
    let cp =
      plane === 0 ? 0x20 + rng.int(0x5f) : // ASCII, most common
      plane === 1 ? rng.int(0x10000) : // BMP, control characters included
      plane === 2 ? 0x10000 + rng.int(0x100000) : // astral: two UTF-16 units each
      [0x1f40b, 0x1d11e, 0x00e9, 0x0301, 0x200d, 0xfeff][rng.int(6)]; // emoji, combining marks, ZWJ, BOM
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
    cps.push(cp);
  }
  return String.fromCodePoint(...cps);
}

describe('char tokenizer', () => {
  it('round-trips random Unicode text, one token per code point', () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    for (let trial = 0; trial < 20; trial++) {
      const text = randomText(rng, 1 + rng.int(2000));
      const tok = CharTokenizer.fromText(text);
      const ids = tok.encode(text);
      expect(ids.length, `seed ${seed}`).toBe([...text].length);
      expect(tok.decode(ids), `seed ${seed}`).toBe(text);
      expect(Math.max(...ids)).toBeLessThan(tok.size);
    }
  });

  it('counts an astral character as one symbol and sorts by code point, not by UTF-16 unit', () => {
    // '\u{1F40B}' is \uD83D\uDC0B in UTF-16, which a string sort would put before '\uFF5E'
    const tok = CharTokenizer.fromText('\uff5e🐋a🐋');
    expect(tok.vocab).toEqual(['a', '\uff5e', '🐋']);
    expect([...tok.encode('🐋a\uff5e')]).toEqual([2, 0, 1]);
  });

  it('round-trips lone surrogates as symbols of their own', () => {
    const text = 'a\ud800b\udc00c';
    const tok = CharTokenizer.fromText(text);
    expect(tok.size).toBe(5);
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('builds the same vocabulary from any ordering of the same characters', () => {
    const rng = new Rng(freshSeed());
    const text = randomText(rng, 3000);
    const shuffled = [...text];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    const a = CharTokenizer.fromText(text);
    const b = CharTokenizer.fromText(shuffled.join(''));
    expect(b.vocab).toEqual(a.vocab);
    const cps = a.vocab.map((s) => s.codePointAt(0)!);
    for (let i = 1; i < cps.length; i++) expect(cps[i]).toBeGreaterThan(cps[i - 1]);
  });

  it('round-trips through checkpoint JSON (object or string), keeping the stored id order', () => {
    const tok = CharTokenizer.fromText('Call me Ishmael. 🐋—');
    const json = tok.toJSON();
    expect(json.type).toBe('char');
    expect(CharTokenizer.fromJSON(json).vocab).toEqual(tok.vocab);
    expect(CharTokenizer.fromJSON(JSON.stringify(json)).vocab).toEqual(tok.vocab);
    const reordered = CharTokenizer.fromJSON({ type: 'char', vocab: ['b', 'a'] });
    expect([...reordered.encode('ab')]).toEqual([1, 0]);
  });

  it('names an unknown character and its position', () => {
    const tok = CharTokenizer.fromText('abc');
    expect(() => tok.encode('abxc')).toThrow(/'x' \(U\+0078\) at position 2 .*not in the vocabulary of 3 symbols/);
    expect(() => tok.encode('a🐋b\n')).toThrow(/'🐋' \(U\+1F40B\) at position 1/);
    expect(() => CharTokenizer.fromText('a🐋').encode('🐋a\n')).toThrow(/U\+000A at position 2 \(code point index; UTF-16 offset 3\)/);
  });

  it('rejects bad ids, bad JSON and an empty text', () => {
    const tok = CharTokenizer.fromText('abc');
    expect(() => tok.decode([0, 3])).toThrow(/token id 3 at position 1 is outside the vocabulary \[0, 3\)/);
    expect(() => CharTokenizer.fromText('')).toThrow(/empty/);
    expect(() => CharTokenizer.fromJSON({ type: 'bpe', vocab: ['a'] })).toThrow(/unknown tokenizer type "bpe"/);
    expect(() => CharTokenizer.fromJSON({ type: 'char', vocab: ['a', 'bc'] })).toThrow(/vocab\[1\] must be exactly one code point/);
    expect(() => CharTokenizer.fromJSON({ type: 'char', vocab: ['a', 'b', 'a'] })).toThrow(/vocab\[2\] repeats vocab\[0\]/);
    expect(() => CharTokenizer.fromJSON({ type: 'char' })).toThrow(/vocab must be an array/);
    expect(() => CharTokenizer.fromJSON(null)).toThrow(/must be an object/);
  });
});
