// Every op of the table with its float64 CPU reference, one line per family.
import type { OpSpec } from '../ops.ts';
import { elementwiseOps } from './elementwise.ts';

export const SPECS: OpSpec[] = [...elementwiseOps];
