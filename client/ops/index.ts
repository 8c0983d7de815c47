// Every op family's GPU side, one line each (the op table of docs/kernels.md, in order).
import { matmulFamily } from './matmul.ts';
import { softmaxFamily } from './softmax.ts';
import { crossEntropyFamily } from './cross_entropy.ts';
import { layerNormFamily } from './layer_norm.ts';
import { elementwiseFamily } from './elementwise.ts';
import { embeddingFamily } from './embedding.ts';
import { attentionFamily } from './attention.ts';
import { rnnFamily } from './rnn.ts';
import { lstmFamily } from './lstm.ts';
import { gruFamily } from './gru.ts';
import { adamwFamily } from './adamw.ts';
import type { GpuOp, OpFamily } from './op.ts';

export const FAMILIES: OpFamily[] = [
  matmulFamily,
  softmaxFamily,
  crossEntropyFamily,
  layerNormFamily,
  elementwiseFamily,
  embeddingFamily,
  attentionFamily,
  rnnFamily,
  lstmFamily,
  gruFamily,
  adamwFamily,
];

export const GPU_OPS = new Map<string, GpuOp>(FAMILIES.flatMap((f) => f.ops).map((o) => [o.name, o]));
