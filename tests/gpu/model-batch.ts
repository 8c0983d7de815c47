// A random language-model batch for the GPU model tests: ids in [0, V), about 20% of targets ignored (-1),
// the first target always counted.
import type { Rng } from '../../shared/rng.ts';

export function randomBatch(rng: Rng, V: number, B: number, T: number) {
  const idx = rng.ints(B * T, V);
  const targets = rng.ints(B * T, V);
  for (let i = 0; i < targets.length; i++) if (rng.next() < 0.2) targets[i] = -1;
  targets[0] = 0;
  return { idx, targets };
}
