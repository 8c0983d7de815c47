// CPU reference (float64) for the attention family: placeholder until the family lands.
import type { OpSpec } from '../ops.ts';

export const attentionOps: OpSpec[] = [];
