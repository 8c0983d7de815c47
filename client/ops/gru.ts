// GPU side of the gru family: placeholder until the family lands.
import type { OpFamily } from './op.ts';

export const gruFamily: OpFamily = { kernels: [], ops: [] };
