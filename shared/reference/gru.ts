// CPU reference (float64) for the gru family: placeholder until the family lands.
import type { OpSpec } from '../ops.ts';

export const gruOps: OpSpec[] = [];
