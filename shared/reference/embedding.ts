// CPU reference (float64) for the embedding family: placeholder until the family lands.
import type { OpSpec } from '../ops.ts';

export const embeddingOps: OpSpec[] = [];
