// GPU side of the lstm family: placeholder until the family lands.
import type { OpFamily } from './op.ts';

export const lstmFamily: OpFamily = { kernels: [], ops: [] };
