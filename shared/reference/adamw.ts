// CPU reference (float64) for the adamw family: placeholder until the family lands.
import type { OpSpec } from '../ops.ts';

export const adamwOps: OpSpec[] = [];
