// CPU reference (float64) for the lstm family: placeholder until the family lands.
import type { OpSpec } from '../ops.ts';

export const lstmOps: OpSpec[] = [];
