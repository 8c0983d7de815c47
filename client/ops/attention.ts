// GPU side of the attention family: placeholder until the family lands.
import type { OpFamily } from './op.ts';

export const attentionFamily: OpFamily = { kernels: [], ops: [] };
