// The swarm protocol: the one typed contract between the coordinator (coordinator/swarm/) and every worker (the
// volunteer page and the Node worker, both through client/worker/loop.ts). socket.io events with acks; frames are
// msgpack (shared/codec.ts), so gradients travel as raw Float32Array bytes.
//
// A worker's life:   hello → welcome      (who am I, which GPU; the identity token it keeps and presents again)
//                    join → JoinReply     (the run it was given: config, vocabulary, token file, weights version)
//                    lease → LeaseReply   (batch indices to compute on weights `version`, or wait)
//                    submit → SubmitReply (loss and the gradient summed over the lease's batches, or eval losses)
// The weights themselves are an HTTP GET (weightsPath: raw float32, immutable, cacheable), not a socket message: a
// step's broadcast is a few bytes ('version') instead of workers × model bytes written on the coordinator's critical
// path, and a 40 MB download never queues a worker's lease or ack behind it. The coordinator sends 'version' to a
// run's room after every optimizer step and 'progress' for the page's chart. Every inbound payload is validated here
// (zod) before it touches state; a refusal says why in words.
import { z } from 'zod';
import type { RunConfig } from './train/run-config.ts';

export const PROTOCOL_VERSION = 2;

export type WorkerKind = 'browser' | 'node' | 'sim';

export const REFUSAL_CODES = [
  'bad-message', // the payload does not match the schema
  'protocol', // another protocol version
  'not-joined', // hello/join first
  'unknown-run',
  'no-run', // nothing to train right now
  'run-not-running', // paused, stopped or done
  'unknown-lease',
  'not-your-lease',
  'expired', // the lease timed out and went to someone else
  'duplicate', // this lease was already counted
  'stale', // computed on weights too old
  'bad-shape', // wrong gradient length or loss count
  'non-finite', // NaN or Inf in the loss or the gradient
  'outlier', // the gradient's norm is far over the recent median
  'banned', // too many strikes in this run
  'rate-limited', // too many messages too fast
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

export interface Refusal {
  ok: false;
  code: RefusalCode;
  reason: string;
}

export const refuse = (code: RefusalCode, reason: string): Refusal => ({ ok: false, code, reason });

// ---- worker → coordinator ----------------------------------------------------------------------------------

export const helloSchema = z.strictObject({
  protocol: z.number().int(),
  kind: z.enum(['browser', 'node', 'sim']),
  /** a name the volunteer chose or the host name */
  name: z.string().max(100).optional(),
  /** the GPU in words (adapter info) */
  adapter: z.string().max(300).optional(),
  /** true on a software adapter (SwiftShader) */
  fallback: z.boolean().optional(),
  /**
   * the identity token an earlier welcome gave this volunteer (coordinator/swarm/identity.ts): its record in a run
   * (strikes, checks passed, a ban) follows it; without one, or with one that does not verify, a new identity
   */
  identity: z.string().max(200).optional(),
});
export type Hello = z.infer<typeof helloSchema>;

export const joinSchema = z.strictObject({
  /** a run to join; omitted: the coordinator picks one (by the runs' weights) */
  runId: z.string().max(100).optional(),
});
export type Join = z.infer<typeof joinSchema>;

export const leaseRequestSchema = z.strictObject({
  runId: z.string().max(100),
  /** the weights version the worker holds (informational: a lease names the version to compute on) */
  version: z.number().int().min(0),
});
export type LeaseRequest = z.infer<typeof leaseRequestSchema>;

export const submissionSchema = z.strictObject({
  runId: z.string().max(100),
  leaseId: z.string().max(100),
  /** the weights version the gradient was computed on */
  version: z.number().int().min(0),
  /** train: the mean of the batches' mean losses; eval: one mean loss per batch in `losses` */
  loss: z.number().optional(),
  losses: z.array(z.number()).max(10_000).optional(),
  /** train: the gradient summed over the lease's batches (each batch's gradient of its own mean loss), flat in the layout */
  grads: z.instanceof(Float32Array).optional(),
  /** ms the worker spent computing (for the console's step-time breakdown) */
  computeMs: z.number().min(0).optional(),
});
export type Submission = z.infer<typeof submissionSchema>;

// ---- coordinator → worker ----------------------------------------------------------------------------------

export interface Welcome {
  ok: true;
  workerId: string;
  coordinator: string;
  /** the identity token to keep and present at every later hello (the same one back, or a new identity) */
  identity: string;
}

/** where a worker gets the run's tokens: GET url (relative to the coordinator), `dtype` little-endian */
export interface TokenFile {
  url: string;
  sha256: string;
  bytes: number;
  dtype: 'u8' | 'u16';
  length: number;
}

export interface RunInfo {
  runId: string;
  name: string;
  config: RunConfig;
  /** the tokenizer's vocabulary (CharTokenizer) */
  vocab: string[];
  tokens: TokenFile;
  paramCount: number;
  /**
   * this run's life in this coordinator process (random). Weights URLs carry it: after a restart from a checkpoint
   * the versions past it are computed again, differently, and must not be served from a cache of the earlier life
   */
  epoch: string;
}

/**
 * where a worker GETs the weights after `version` optimizer steps (relative to the coordinator): the run's flat layout
 * as little-endian float32, paramCount × 4 bytes, immutable. Only the run's current version is served; an older one
 * answers 404 (the run moved on: lease again).
 */
export const weightsPath = (runId: string, epoch: string, version: number): string => `weights/${encodeURIComponent(runId)}/${epoch}/${version}.bin`;

/** the body of a weights GET's 404: why, and the version the run is at (absent when this coordinator has no such run or epoch) */
export interface WeightsGone {
  error: string;
  version?: number;
}

/** the version a weights 404 names (a worker takes that one next), if its body names one */
export function goneVersion(body: Uint8Array | ArrayBuffer): number | undefined {
  try {
    const v = (JSON.parse(new TextDecoder().decode(body)) as Partial<WeightsGone>).version;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

export type JoinReply = { ok: true; run: RunInfo; version: number } | Refusal;

export interface Lease {
  leaseId: string;
  runId: string;
  /** compute on the weights after `version` optimizer steps */
  version: number;
  /** train: dataset.batch('train', seed, i, B, T) for each i; eval: dataset.evalBatch(i, evalBatches, B, T) */
  kind: 'train' | 'eval';
  batches: number[];
  B: number;
  T: number;
  seed: number;
  /** eval: how many fixed validation batches the set has */
  evalBatches: number;
  /** ms from issue until the lease goes to someone else */
  timeoutMs: number;
}

export type LeaseReply = { ok: true; lease: Lease } | { ok: true; wait: number; why: string } | Refusal;

export type SubmitReply = { ok: true; step: number; version: number } | Refusal;

export interface Progress {
  runId: string;
  step: number;
  maxSteps: number;
  /** train loss of the step just finished */
  loss?: number;
  /** val loss when this step was evaluated */
  valLoss?: number;
  tokensPerSec: number;
  workers: number;
  status: RunStatus;
}

export type RunStatus = 'running' | 'paused' | 'stopped' | 'done';

/** the run has new weights (GET weightsPath(runId, epoch, version)) */
export interface VersionNotice {
  runId: string;
  version: number;
}

// ---- the event maps (socket.io generics: a wrong payload fails to compile) --------------------------------

type Ack<T> = (reply: T) => void;

export interface ClientToServerEvents {
  hello: (m: Hello, ack: Ack<Welcome | Refusal>) => void;
  join: (m: Join, ack: Ack<JoinReply>) => void;
  lease: (m: LeaseRequest, ack: Ack<LeaseReply>) => void;
  submit: (m: Submission, ack: Ack<SubmitReply>) => void;
}

export interface ServerToClientEvents {
  version: (m: VersionNotice) => void;
  progress: (m: Progress) => void;
  /** the run this worker was in ended or was stopped: join again */
  'run-ended': (m: { runId: string; status: RunStatus; reason: string }) => void;
  /** a message without an ack was refused */
  refused: (m: Refusal) => void;
}

const inbound = {
  hello: helloSchema,
  join: joinSchema,
  lease: leaseRequestSchema,
  submit: submissionSchema,
} as const;

/**
 * the schema of each inbound event's payload. No prototype: the event name comes off the wire, and an event named
 * 'toString', 'constructor' or '__proto__' must find no schema here (with Object.prototype behind it, it found a
 * function, whose missing safeParse threw out of the socket middleware and killed the coordinator)
 */
export const INBOUND: typeof inbound = Object.freeze(Object.setPrototypeOf(inbound, null));

/** one line naming every schema problem of a payload, by path */
export function schemaProblems(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ');
}
