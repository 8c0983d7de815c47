// GPU side of the layer_norm family: placeholder until the family lands.
import type { OpFamily } from './op.ts';

export const layerNormFamily: OpFamily = { kernels: [], ops: [] };
