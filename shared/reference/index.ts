// Every op of the table with its float64 CPU reference, one line per family (docs/kernels.md order).
import type { OpSpec } from '../ops.ts';
import { matmulOps } from './matmul.ts';
import { softmaxOps } from './softmax.ts';
import { crossEntropyOps } from './cross_entropy.ts';
import { layerNormOps } from './layer_norm.ts';
import { elementwiseOps } from './elementwise.ts';
import { embeddingOps } from './embedding.ts';
import { attentionOps } from './attention.ts';
import { rnnOps } from './rnn.ts';
import { lstmOps } from './lstm.ts';
import { gruOps } from './gru.ts';
import { adamwOps } from './adamw.ts';

export const SPECS: OpSpec[] = [
  ...matmulOps,
  ...softmaxOps,
  ...crossEntropyOps,
  ...layerNormOps,
  ...elementwiseOps,
  ...embeddingOps,
  ...attentionOps,
  ...rnnOps,
  ...lstmOps,
  ...gruOps,
  ...adamwOps,
];
