// GPU side of the embedding family: placeholder until the family lands.
import type { OpFamily } from './op.ts';

export const embeddingFamily: OpFamily = { kernels: [], ops: [] };
