// CPU reference (float64) for the layer_norm family: placeholder until the family lands.
import type { OpSpec } from '../ops.ts';

export const layerNormOps: OpSpec[] = [];
