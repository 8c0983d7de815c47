// CPU reference (float64) for the softmax family: placeholder until the family lands.
import type { OpSpec } from '../ops.ts';

export const softmaxOps: OpSpec[] = [];
