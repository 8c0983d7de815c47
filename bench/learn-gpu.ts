// The four family presets trained one after another on one worker in Node through Dawn, for the learning table on
// a real GPU (the 2-core runs are `gradswarm train PRESET --runtime node`). Writes, per preset, the same
// metrics.jsonl lines as `gradswarm train` into OUT/<preset>.jsonl, and prints a line per eval.
//
//   node coordinator/gradswarm.mjs bench learning --export-corpus .gpu/moby-dick.txt   # the corpus as one file
//   npx esbuild bench/learn-gpu.ts --bundle --platform=node --format=esm --external:webgpu --loader:.wgsl=text --outfile=.gpu/learn.mjs
//   bash .gpu/run.sh node .gpu/learn.mjs .gpu/moby-dick.txt $OUT [presets...]     # on the GPU machine
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openNodeGpu } from '../client/host/node-gpu.ts';
import { train } from '../client/train/trainer.ts';
import { encodeCorpus } from '../shared/data/dataset.ts';
import { parseRunConfig } from '../shared/train/run-config.ts';

const [corpusPath, out, ...only] = process.argv.slice(2);
if (!corpusPath || !out) throw new Error('usage: node learn.mjs CORPUS.txt OUT_DIR [preset ...]');
const presets = only.length ? only : ['gpt-char-small', 'lstm-char', 'gru-char', 'rnn-char'];
const text = readFileSync(corpusPath, 'utf8');
const { tokenizer, dataset } = encodeCorpus(text);
mkdirSync(out, { recursive: true });
const gpu = await openNodeGpu();
console.log(`adapter: ${gpu.adapterName}${gpu.isFallback ? ' (software)' : ''}; corpus ${text.length} chars, vocab ${tokenizer.size}`);
try {
  for (const p of presets) {
    const raw = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'coordinator', 'presets', `${p}.json`), 'utf8'));
    const config = parseRunConfig(raw, { vocabSize: () => tokenizer.size });
    const smoke = Number(process.env.LEARN_MAX_STEPS); // a short try of the script itself
    if (smoke > 0) Object.assign(config.train, { max_steps: smoke, eval_interval: smoke });
    const file = join(out, `${p}.jsonl`);
    writeFileSync(file, '');
    const t0 = performance.now();
    const t = () => +((performance.now() - t0) / 1000).toFixed(2);
    const line = (r: object) => appendFileSync(file, `${JSON.stringify({ ...r, t: t() })}\n`);
    const r = await train({
      gpu,
      config,
      dataset,
      tokenizer,
      onStep: (s) => line({ step: s.step, loss: s.loss, lr: s.lr, grad_norm: s.gradNorm, tokens_per_s: Math.round(s.tokensPerSec) }),
      onEval: (e) => {
        line({ step: e.step, val_loss: e.valLoss });
        console.log(`${p} step ${e.step}: val ${e.valLoss.toFixed(4)} at ${t()} s`);
      },
    });
    console.log(`${p}: done in ${t()} s, ${Math.round(r.tokensPerSec)} tokens/s, val ${r.lastValLoss?.toFixed(4)}`);
  }
} finally {
  gpu.destroy();
}
