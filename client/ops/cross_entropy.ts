// GPU side of the cross_entropy family: placeholder until the family lands.
import type { OpFamily } from './op.ts';

export const crossEntropyFamily: OpFamily = { kernels: [], ops: [] };
