// GPU side of the rnn family: placeholder until the family lands.
import type { OpFamily } from './op.ts';

export const rnnFamily: OpFamily = { kernels: [], ops: [] };
