// Every op family's GPU side, one line each.
import { elementwise } from './elementwise.ts';
import type { GpuOp, OpFamily } from './op.ts';

export const FAMILIES: OpFamily[] = [elementwise];

export const GPU_OPS = new Map<string, GpuOp>(FAMILIES.flatMap((f) => f.ops).map((o) => [o.name, o]));
