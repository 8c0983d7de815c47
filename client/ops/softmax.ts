// GPU side of the softmax family: placeholder until the family lands.
import type { OpFamily } from './op.ts';

export const softmaxFamily: OpFamily = { kernels: [], ops: [] };
