// GPU side of the adamw family: placeholder until the family lands.
import type { OpFamily } from './op.ts';

export const adamwFamily: OpFamily = { kernels: [], ops: [] };
