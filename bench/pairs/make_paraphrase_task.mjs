// A synthetic paraphrase-detection task built from rotten_tomatoes, to show that sentence pairs reach the model:
// label 1 when sentence2 is sentence1 with about 30% of its words dropped, 0 when it is another review's words
// (same treatment); half of each. Seeded, so the files come out the same each time. Either text alone says
// nothing of the label. Writes train.csv (4000 rows, from train), validation.csv (500) and test.csv (1000) to
// /tmp/pairexp. Run from the repository root:
//
//   npm install --prefix /tmp/tokref hyparquet@1.33.0
//   mkdir -p /tmp/pairexp && node bench/pairs/make_paraphrase_task.mjs
import { createRequire } from 'module';
import fs from 'fs';
const require = createRequire('/tmp/tokref/node_modules/x.js');
const { parquetReadObjects, asyncBufferFromFile } = await import(require.resolve('hyparquet'));
const dir = '/work/shared/hf/datasets/cornell-movie-review-data/rotten_tomatoes/resolve/main';
let seed = 12345;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const drop = t => t.split(' ').filter(() => rand() > 0.3).join(' ') || t;
const csv = s => '"' + s.replace(/"/g, '""') + '"';
for (const [split, n] of [['train', 4000], ['validation', 500], ['test', 1000]]) {
  const rows = (await parquetReadObjects({ file: await asyncBufferFromFile(`${dir}/${split}.parquet`), columns: ['text'] })).map(r => r.text);
  const out = ['sentence1,sentence2,label'];
  for (let i = 0; i < Math.min(n, rows.length); i++) {
    const same = rand() < 0.5;
    const other = rows[(i + 1 + Math.floor(rand() * (rows.length - 1))) % rows.length];
    out.push([csv(rows[i]), csv(drop(same ? rows[i] : other)), same ? 1 : 0].join(','));
  }
  fs.writeFileSync(`/tmp/pairexp/${split}.csv`, out.join('\n') + '\n');
}
