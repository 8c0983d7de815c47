// The admin API as the console uses it (docs/swarm.md, "Admin API"): every call carries the admin token as
// `Authorization: Bearer <token>`; a 401 becomes an Unauthorized error (the console then asks for the token again),
// any other failure an ApiError with the server's {error} and, for configs, its problems by path.
import type { WorkerStats } from '../../coordinator/swarm/run.ts';
import type { RunSummary } from '../../coordinator/swarm/server.ts';
import type { RunStatus } from '../../shared/protocol.ts';

export type { RunSummary };

/** one optimizer step (coordinator/swarm/run.ts StepRecord); computeMs: the slowest worker's compute, when known */
export interface StepRow {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  samples: number;
  ms: number;
  computeMs?: number;
  aggregateMs: number;
  tokensPerSec: number;
  t: number;
}

export interface ValRow {
  step: number;
  valLoss: number;
  t?: number;
}

/** a row of GET /api/runs/:id's volunteers table: the run's own record of the worker, as JSON */
export type VolunteerRow = WorkerStats;

/** the summary plus the run's record; `workers` here is the volunteers table, not the count */
export interface RunDetail extends Omit<RunSummary, 'workers'> {
  config: Record<string, Record<string, unknown>>;
  lastCheckpoint: string | null;
  leasesOut: number;
  history: StepRow[];
  valHistory: ValRow[];
  workers: VolunteerRow[];
  checkpoints?: { step: number; path: string }[];
}

export type Validation = { ok: true; config: unknown } | { ok: false; problems: string[] };

/** the /admin namespace's events (server → console) */
export interface AdminEvents {
  runs: (summaries: RunSummary[]) => void;
  step: (m: { runId: string; record: StepRow }) => void;
  eval: (m: { runId: string; step: number; valLoss: number }) => void;
  status: (m: { runId: string; status: RunStatus; reason: string }) => void;
}

export class Unauthorized extends Error {
  constructor() {
    super('The coordinator refused this token.');
    this.name = 'Unauthorized';
  }
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems: string[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export class Api {
  constructor(readonly token: string) {}

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status === 401) throw new Unauthorized();
    if (!r.ok) {
      const j = (await r.json().catch(() => ({}))) as { error?: string; problems?: string[] };
      throw new ApiError(r.status, j.error ?? `${method} ${path}: HTTP ${r.status}`, j.problems ?? []);
    }
    return r;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.request(method, path, body)).json()) as T;
  }

  runs = () => this.json<RunSummary[]>('GET', '/api/runs');
  run = (id: string) => this.json<RunDetail>('GET', `/api/runs/${encodeURIComponent(id)}`);
  validate = (config: unknown) => this.json<Validation>('POST', '/api/config/validate', { config });
  create = (body: { id?: string; name?: string; config: unknown }) => this.json<{ id: string }>('POST', '/api/runs', body);
  action = (id: string, what: 'pause' | 'resume' | 'stop') => this.json<{ id: string; status: RunStatus }>('POST', `/api/runs/${encodeURIComponent(id)}/${what}`);
  setWeight = (id: string, weight: number) => this.json<unknown>('PATCH', `/api/runs/${encodeURIComponent(id)}`, { weight });

  /** the run's current weights as a safetensors file, and the file name the server suggests */
  async export(id: string): Promise<{ blob: Blob; filename: string }> {
    const r = await this.request('GET', `/api/runs/${encodeURIComponent(id)}/export`);
    const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(r.headers.get('content-disposition') ?? '');
    return { blob: await r.blob(), filename: m ? decodeURIComponent(m[1]) : `${id}.safetensors` };
  }
}
