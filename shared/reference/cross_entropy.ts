// CPU reference (float64) for the cross_entropy family: placeholder until the family lands.
import type { OpSpec } from '../ops.ts';

export const crossEntropyOps: OpSpec[] = [];
