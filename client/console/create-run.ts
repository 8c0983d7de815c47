// The create-run form: a run config as JSON (prefilled with an example), an optional id and name. While typing, the
// config is checked by the coordinator (POST /api/config/validate, debounced) and every problem is listed by its
// path; Create posts it (POST /api/runs) and shows the same problems if the coordinator refuses it.
import { ApiError, Unauthorized, type Api } from './api.ts';
import { $, h } from './dom.ts';

/** a small GPT on Moby-Dick, trained by the swarm (coordinator/presets/swarm-gpt-char.json) */
export const EXAMPLE_CONFIG = {
  model: { model: 'gpt', n_layer: 2, n_head: 4, n_embd: 64, block_size: 64 },
  data: { corpus: 'moby-dick', batch_size: 16, block_size: 64 },
  optim: { lr: 2e-3, min_lr: 2e-4, warmup_iters: 50, lr_decay_iters: 1500, weight_decay: 0.1, grad_clip: 1.0 },
  train: { max_steps: 1500, eval_interval: 100, eval_batches: 8, checkpoint_interval: 50, keep_checkpoints: 3, seed: 1 },
  swarm: { target_batch_size: 32, batches_per_lease: 1, lease_timeout_s: 60, max_staleness: 1, weight: 1 },
};

/** JSON with one line per section: short enough to read, each section whole */
export function configText(config: Record<string, unknown>): string {
  const one = (v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? `{ ${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${JSON.stringify(x)}`).join(', ')} }` : JSON.stringify(v);
  return `{\n${Object.entries(config).map(([k, v]) => `  ${JSON.stringify(k)}: ${one(v)}`).join(',\n')}\n}\n`;
}

type Parsed = { ok: true; config: unknown } | { ok: false; problem: string };

function parse(text: string): Parsed {
  try {
    return { ok: true, config: JSON.parse(text) };
  } catch (e) {
    return { ok: false, problem: `not JSON: ${(e as Error).message}` };
  }
}

export interface CreateRunForm {
  /** (re)attach to a signed-in session */
  setApi(api: Api): void;
}

export function createRunForm(opts: { created: (id: string) => void; unauthorized: () => void }): CreateRunForm {
  const form = $<HTMLFormElement>('create-form');
  const text = $<HTMLTextAreaElement>('config');
  const problems = $<HTMLUListElement>('problems');
  const state = $('config-state');
  const submit = $<HTMLButtonElement>('create');
  let api: Api | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let seq = 0;

  text.value = configText(EXAMPLE_CONFIG);

  const show = (kind: 'ok' | 'bad' | 'checking' | 'error', message: string, list: string[] = []) => {
    state.dataset.state = kind;
    state.textContent = message;
    problems.replaceChildren(...list.map((p) => h('li', {}, p)));
    problems.hidden = !list.length;
    text.setAttribute('aria-invalid', String(kind === 'bad'));
  };

  const fail = (e: unknown) => {
    if (e instanceof Unauthorized) return opts.unauthorized();
    if (e instanceof ApiError && e.problems.length) return show('bad', e.message, e.problems);
    show('error', (e as Error).message);
  };

  const check = async () => {
    const my = ++seq;
    const p = parse(text.value);
    if (!p.ok) return show('bad', 'The config is not valid JSON.', [p.problem]);
    if (!api) return;
    show('checking', 'Checking…');
    try {
      const v = await api.validate(p.config);
      if (my !== seq) return; // a newer edit is being checked
      if (v.ok) show('ok', 'The config is valid.');
      else show('bad', `${v.problems.length} problem${v.problems.length > 1 ? 's' : ''}:`, v.problems);
    } catch (e) {
      if (my === seq) fail(e);
    }
  };

  text.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearTimeout(timer);
    const p = parse(text.value);
    if (!p.ok) return show('bad', 'The config is not valid JSON.', [p.problem]);
    if (!api) return;
    const id = $<HTMLInputElement>('run-id').value.trim() || undefined;
    const name = $<HTMLInputElement>('run-name').value.trim() || undefined;
    submit.disabled = true;
    seq++;
    show('checking', 'Creating…');
    try {
      const r = await api.create({ id, name, config: p.config });
      show('ok', `Created run ${r.id}.`);
      $<HTMLInputElement>('run-id').value = '';
      $<HTMLInputElement>('run-name').value = '';
      opts.created(r.id);
    } catch (err) {
      fail(err);
    } finally {
      submit.disabled = false;
    }
  });

  return {
    setApi(a) {
      api = a;
      void check();
    },
  };
}
