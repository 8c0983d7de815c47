// GPU side of the matmul family: placeholder until the family lands.
import type { OpFamily } from './op.ts';

export const matmulFamily: OpFamily = { kernels: [], ops: [] };
