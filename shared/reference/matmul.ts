// CPU reference (float64) for the matmul family: placeholder until the family lands.
import type { OpSpec } from '../ops.ts';

export const matmulOps: OpSpec[] = [];
