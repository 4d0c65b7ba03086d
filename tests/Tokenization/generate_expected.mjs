// Writes the expected token ids of the tokenizer tests from Hugging Face's own `tokenizers` (the Rust
// library behind transformers' BertTokenizerFast; npm package tokenizers@0.23.2), configured exactly
// as ../shared/tools/hf_tokenize.js configures it for a vocab.txt, for uncased (lower-case + strip
// accents) and cased. Run from the repository root:
//
//   npm install --prefix /tmp/tokref tokenizers@0.23.2 hyparquet@1.33.0
//   NODE_PATH=/tmp/tokref/node_modules node tests/Tokenization/generate_expected.mjs \
//     ../shared/hf/sentence-transformers/all-MiniLM-L6-v2/resolve/main/vocab.txt \
//     ../shared/hf/datasets/cornell-movie-review-data/rotten_tomatoes/resolve/main
//
// Outputs, beside this script:
//   corpus-expected.jsonl   per line of corpus.jsonl: text, uncased/cased ids with [CLS] and [SEP], tokens
//   added-tokens-expected.jsonl   per line of added-tokens.jsonl: text, uncased ids and tokens with the added
//                           tokens of added-tokens-config.json
//   tokenizer-uncased-added.json.gz   that tokenizer (uncased, with those added tokens) saved as tokenizer.json
//   rotten-expected.uncased.txt.gz   per rotten_tomatoes text (train, validation, test rows in file
//                           order): its uncased ids without [CLS] and [SEP], space-separated
//   rotten-expected.cased-differences.txt   the same for cased, only the rows where it differs from
//                           uncased (the texts are lower-case already), as ROW<TAB>ids
//   pairs-expected.jsonl    sentence pairs (made-up ones at max lengths 3-13, then neighbouring rotten_tomatoes
//                           texts at 3-128), each with its max length, uncased ids and token type ids,
//                           truncated longest-first
//   codepoints-expected.txt.gz   what the normalizer and pre-tokenizer make of every code point c
//                           inside a word ("x" + c + "y"), cased, uncased, and lower-cased without
//                           stripping accents (do_lower_case true, strip_accents false): the words,
//                           joined by spaces, classed as '=' unchanged, 'R' removed, 'W' a word break
//                           (whitespace), 'S' a word of its own (punctuation, CJK), or else the literal
//                           result as JSON. Runs of code points alike share a line: FIRST LAST CASED
//                           UNCASED LOWER, tab-separated, code points in hex.
import { createRequire } from 'module';
import fs from 'fs';
import os from 'os';
import path from 'path';
import zlib from 'zlib';
import { fileURLToPath } from 'url';
const require = createRequire(path.join(process.env.NODE_PATH ?? '.', 'x.js'));
const t = require('tokenizers');
const { parquetReadObjects, asyncBufferFromFile } = await import(require.resolve('hyparquet'));

const [vocabPath, rottenDir] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));

// the set-up of hf_tokenize.js, line for line, plus the special tokens that transformers adds to every
// tokenizer it loads (PreTrainedTokenizerFast: AddedToken(special=True, normalized=False)), so that a
// literal "[SEP]" in the text is matched as the token, on the raw text
const vocab = {};
fs.readFileSync(vocabPath, 'utf8').split(/\r?\n/).forEach((w, i) => { if (w.length && !(w in vocab)) vocab[w] = i; });
function tokenizer(uncased) {
  const tok = new t.Tokenizer(t.WordPiece.init(vocab, { unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 }));
  tok.setNormalizer(t.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: uncased, lowercase: uncased }));
  tok.setPreTokenizer(t.bertPreTokenizer());
  tok.setPostProcessor(t.bertProcessing(['[SEP]', vocab['[SEP]']], ['[CLS]', vocab['[CLS]']]));
  tok.addSpecialTokens(['[UNK]', '[SEP]', '[PAD]', '[CLS]', '[MASK]']);
  return tok;
}
const uncased = tokenizer(true), cased = tokenizer(false);

const corpus = fs.readFileSync(path.join(here, 'corpus.jsonl'), 'utf8').split('\n').filter(l => l.length).map(l => JSON.parse(l));
const out = [];
for (const { why, text } of corpus) {
  const u = await uncased.encode(text), c = await cased.encode(text);
  out.push(JSON.stringify({ why, text, uncased: u.getIds(), cased: c.getIds(), uncased_tokens: u.getTokens(), cased_tokens: c.getTokens() }));
}
fs.writeFileSync(path.join(here, 'corpus-expected.jsonl'), out.join('\n') + '\n');

// added tokens as added-tokens-config.json describes them (added_tokens_decoder), on top of the five special
// ones: a normalized one, a single-word special one, a special one marked normalized, and three past the vocab
// (ids 30522-30524, as tokenizers appends them; "nt>" starts inside "<ent>x", whose refused single-word match
// still hides it); the expected ids of added-tokens.jsonl, uncased
{
  const tok = tokenizer(true);
  tok.addAddedTokens([
    new t.AddedToken('[unused0]', false), new t.AddedToken('[unused1]', true, { singleWord: true }),
    new t.AddedToken('[unused2]', true, { normalized: true }), new t.AddedToken('<ent>', false),
    new t.AddedToken('<ent>x', false, { singleWord: true }), new t.AddedToken('nt>', false)]);
  const lines = [];
  for (const line of fs.readFileSync(path.join(here, 'added-tokens.jsonl'), 'utf8').split('\n').filter(l => l.length)) {
    const text = JSON.parse(line), e = await tok.encode(text);
    lines.push(JSON.stringify({ text, ids: e.getIds(), tokens: e.getTokens() }));
  }
  fs.writeFileSync(path.join(here, 'added-tokens-expected.jsonl'), lines.join('\n') + '\n');
  // the same tokenizer as tokenizers saves it: tokenizer.json, read where a model folder has no vocab.txt
  const saved = path.join(os.tmpdir(), `tokenizer-${process.pid}.json`);
  tok.save(saved);
  fs.writeFileSync(path.join(here, 'tokenizer-uncased-added.json.gz'), zlib.gzipSync(fs.readFileSync(saved), { level: 9 }));
  fs.unlinkSync(saved);
}

const texts = [];
for (const split of ['train', 'validation', 'test']) {
  const rows = await parquetReadObjects({ file: await asyncBufferFromFile(path.join(rottenDir, `${split}.parquet`)), columns: ['text'] });
  for (const r of rows) texts.push(r.text);
}
// sentence pairs, [CLS] A [SEP] B [SEP], truncated as transformers' fast tokenizer truncates with
// truncation=True (TruncationStrategy.LongestFirst): neighbouring rotten_tomatoes texts and a few made-up
// pairs, each at one of a cycle of max lengths, uncased
{
  const lengths = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 24, 31, 32, 48, 64, 128];
  // made-up pairs at every max length from 3 to 13: both cut, one cut, a tie, an empty text, words of several
  // pieces that carry a text past max_length (tokenizers 0.23 stops a text's tokenization after the word that
  // reaches max_length, and truncation compares those counts), special tokens in the text (they do not stop it)
  const madeUp = [['a b c d e f g', 'h i j'], ['a b c', 'd e f g h i j'], ['a b c d', 'e f g h'], ['a b c d e f', 'g'],
    ['unaffable unaffable', 'x'], ['one [SEP] two', 'three [CLS] four'], ['a b c d e f g h i j', ''], ['', 'a b c d e f g h i j'],
    ['a b c d e f g h i j k l m n', 'a b c d e f g h i j k l m'], ['unaffable unaffable unaffable unaffable unaffable', 'a b c d e f g h i j k l m n o'],
    ['a b c d e f g h i j k l m n o', 'unaffable unaffable unaffable unaffable unaffable'], ['[SEP] [SEP] [SEP] [SEP] [SEP] [SEP] a b c d e f', 'a b c d e f g h i j k l']];
  const pairs = [];
  for (const [a, b] of madeUp) for (let m = 3; m <= 13; m++) pairs.push([a, b, m]);
  for (let i = 0, k = 0; i + 1 < texts.length && k < 200; i += 53, k++) pairs.push([texts[i], texts[i + 1], lengths[k % lengths.length]]);
  const lines = [];
  for (const [a, b, maxLength] of pairs) {
    uncased.setTruncation(maxLength, { strategy: t.TruncationStrategy.LongestFirst });
    const e = await uncased.encode(a, b);
    lines.push(JSON.stringify({ text: a, pair: b, max_length: maxLength, ids: e.getIds(), type_ids: e.getTypeIds() }));
  }
  uncased.disableTruncation();
  fs.writeFileSync(path.join(here, 'pairs-expected.jsonl'), lines.join('\n') + '\n');
}

const uncasedLines = [], casedDifferences = [];
for (const [row, text] of texts.entries()) {
  const u = (await uncased.encode(text)).getIds().slice(1, -1).join(' ');
  const c = (await cased.encode(text)).getIds().slice(1, -1).join(' ');
  uncasedLines.push(u);
  if (c !== u) casedDifferences.push(`${row}\t${c}`);
}
fs.writeFileSync(path.join(here, 'rotten-expected.uncased.txt.gz'), zlib.gzipSync(uncasedLines.join('\n') + '\n', { level: 9 }));
fs.writeFileSync(path.join(here, 'rotten-expected.cased-differences.txt'), casedDifferences.join('\n') + '\n');
const modes = [[false, false], [true, true], [false, true]].map(([strip, lower]) =>
  t.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: strip, lowercase: lower }));
const preTokenizer = t.bertPreTokenizer();
function classify(c, words) {
  const joined = words.join(' ');
  if (joined === `x${c}y`) return '=';
  if (joined === 'xy') return 'R';
  if (joined === 'x y') return 'W';
  if (joined === `x ${c} y`) return 'S';
  return JSON.stringify(joined);
}
const runs = [];
for (let cp = 0; cp <= 0x10FFFF; cp++) {
  if (cp >= 0xD800 && cp <= 0xDFFF) continue;
  const c = String.fromCodePoint(cp);
  const classes = modes.map(n => classify(c, preTokenizer.preTokenizeString(n.normalizeString(`x${c}y`)).map(p => p[0]))).join('\t');
  const last = runs[runs.length - 1];
  if (last && last.classes === classes && !classes.includes('"') && last.to === cp - 1) last.to = cp;
  else runs.push({ from: cp, to: cp, classes });
}
fs.writeFileSync(path.join(here, 'codepoints-expected.txt.gz'),
  zlib.gzipSync(runs.map(r => `${r.from.toString(16)}\t${r.to.toString(16)}\t${r.classes}`).join('\n') + '\n', { level: 9 }));
console.error(`${corpus.length} corpus texts, ${texts.length} rotten_tomatoes texts`);
