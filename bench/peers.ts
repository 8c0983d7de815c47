// The same rows through @tensorflow/tfjs (webgpu backend) and @jax-js/jax (webgpu device, jit), timed as
// ours are (bench/timing.ts). Backward rows use each library's own autodiff of the row's forward function
// (tf.grads; jit(grad(sum(f(x) · dy)))), with the same upstream grad as ours. Browser only.
import type * as TF from '@tensorflow/tfjs-core';
import type * as JAX from '@jax-js/jax';
import type { HostTensor } from '../shared/tensor.ts';
import { diffInputs, gradOutput, type BenchRow, type JaxLib, type TfLib } from './cases.ts';
import { checkFinite, errorRun, type LibOutcome } from './result.ts';
import { measure, type TimingOptions } from './timing.ts';

const NO_VERSION: LibOutcome = { status: 'missing', message: 'no version of this row' };
const isInt = (h: HostTensor) => h.data instanceof Int32Array;
const list = <T>(r: T | T[]): T[] => (Array.isArray(r) ? r : [r]);

/** tfjs records into a command encoder and submits every 15 dispatches: submit the rest, then wait */
async function tfjsSync(tf: TfLib): Promise<void> {
  const b = tf.backend() as unknown as { commandEncoder: GPUCommandEncoder | null; endComputePassEncoder(): void; submitQueue(): void; device: GPUDevice };
  if (b.commandEncoder) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
  await b.device.queue.onSubmittedWorkDone();
}

export async function runTfjs(tf: TfLib, row: BenchRow, host: Record<string, HostTensor>, seed: number, t: TimingOptions): Promise<LibOutcome> {
  if (!row.tfjs) return NO_VERSION;
  const f = row.tfjs;
  const x: Record<string, TF.Tensor> = {};
  const owned: TF.Tensor[] = [];
  try {
    for (const [k, h] of Object.entries({ ...host, ...row.tfjsConsts?.() })) {
      x[k] = tf.tensor(h.data as Float32Array | Int32Array, h.shape, isInt(h) ? 'int32' : 'float32');
      owned.push(x[k]);
    }
    const names = row.pass === 'forward' ? [] : diffInputs(row);
    let call: () => TF.Tensor[];
    if (row.pass === 'forward') call = () => tf.tidy(() => list(f(tf, x)));
    else {
      const grads = tf.grads((...xs: TF.Tensor[]) => f(tf, { ...x, ...Object.fromEntries(names.map((n, i) => [n, xs[i]])) }) as TF.Tensor);
      const out = tf.tidy(() => f(tf, x) as TF.Tensor);
      const dy = tf.tensor(gradOutput(out.shape, seed).data as Float32Array, out.shape);
      out.dispose();
      owned.push(dy);
      call = () => tf.tidy(() => grads(names.map((n) => x[n]), dy));
    }
    const first = call();
    const values: Record<string, Float32Array> = {};
    for (let i = 0; i < (row.pass === 'forward' ? 1 : names.length); i++) values[names[i] ?? 'out'] = Float32Array.from(await first[i].data());
    tf.dispose(first);
    const bad = checkFinite(values);
    if (bad) return { status: 'error', message: bad };
    const timing = await measure(async (reps) => {
      // disposing right away is safe: tfjs frees a tensor still used by queued work only after submitting it
      for (let i = 0; i < reps; i++) tf.dispose(call());
      await tfjsSync(tf);
    }, t);
    return { status: 'ok', timing, values };
  } catch (e) {
    return errorRun(e);
  } finally {
    tf.dispose(owned);
  }
}

export async function runJax(jax: JaxLib, row: BenchRow, host: Record<string, HostTensor>, seed: number, t: TimingOptions): Promise<LibOutcome> {
  if (!row.jax) return NO_VERSION;
  const f = row.jax;
  const np = jax.numpy;
  const names = Object.keys(row.inputs);
  const named = (xs: JAX.Array[]) => Object.fromEntries(names.map((n, i) => [n, xs[i]]));
  const arrays: JAX.Array[] = [];
  const jitted: { dispose(): void }[] = [];
  try {
    for (const n of names) arrays.push(np.array(host[n].data as Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer>, { shape: host[n].shape, dtype: isInt(host[n]) ? np.int32 : np.float32 }));
    const refs = () => arrays.map((a) => a.ref);
    const forward = jax.jit((...xs: JAX.Array[]) => f(jax, named(xs)));
    jitted.push(forward);
    let call: () => JAX.Array[];
    const diff = diffInputs(row);
    if (row.pass === 'forward') call = () => list(forward(...refs()));
    else {
      const out = list(forward(...refs()))[0];
      const dy = np.array(gradOutput(out.shape, seed).data as Float32Array<ArrayBuffer>, { shape: out.shape, dtype: np.float32 });
      out.dispose();
      arrays.push(dy); // disposed with the inputs
      const argnums = diff.map((n) => names.indexOf(n));
      // grad of Σ f(x) · dy with respect to the differentiated inputs is the vector-Jacobian product with dy
      const loss = (...xs: JAX.Array[]) => {
        const d = xs.pop()!;
        return np.sum(list(f(jax, named(xs)))[0].mul(d));
      };
      const grads = jax.jit((...xs: JAX.Array[]) => (jax.grad as any)(loss, { argnums })(...xs) as JAX.Array[]);
      jitted.push(grads);
      call = () => list(grads(...refs()));
    }
    const first = call();
    const values: Record<string, Float32Array> = {};
    const keys = row.pass === 'forward' ? ['out'] : diff;
    let outBytes = 0;
    for (const [i, a] of first.entries()) {
      outBytes += 4 * a.size;
      if (i < keys.length) values[keys[i]] = Float32Array.from((await a.data()) as Float32Array); // data() disposes a
      else a.dispose();
    }
    const bad = checkFinite(values);
    if (bad) return { status: 'error', message: bad };
    // jax-js is lazy: an array's work runs only once something waits on it, so every result is waited for
    const timing = await measure(
      async (reps) => {
        const rs: JAX.Array[] = [];
        for (let i = 0; i < reps; i++) rs.push(...call());
        await Promise.all(rs.map((a) => a.blockUntilReady()));
        rs.forEach((a) => a.dispose());
      },
      t,
      Math.max(1, Math.min(t.maxReps, Math.floor(2 ** 29 / Math.max(outBytes, 1)))), // results of a run are held until it ends
    );
    return { status: 'ok', timing, values };
  } catch (e) {
    return errorRun(e);
  } finally {
    arrays.forEach((a) => a.refCount > 0 && a.dispose());
    jitted.forEach((j) => j.dispose());
  }
}
