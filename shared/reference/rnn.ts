// CPU reference (float64) for the rnn family: placeholder until the family lands.
import type { OpSpec } from '../ops.ts';

export const rnnOps: OpSpec[] = [];
