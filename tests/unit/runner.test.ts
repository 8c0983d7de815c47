// The op runner's host-side checks, which run before anything reaches the GPU (a stand-in Gpu is enough), and
// the browser host's unwrapping of errors thrown in the page.
import { describe, expect, it } from 'vitest';
import { pageError } from '../../client/host/op-host.ts';
import { runOp } from '../../client/runner.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';

const g = {} as Gpu; // never reached: every case below is refused first
const f = (n: number) => ({ shape: [n], data: new Float32Array(n) });

describe('runOp tensor names', () => {
  it('refuses a tensor the op does not read, naming the ones it does', async () => {
    await expect(runOp(g, 'add', { input: f(3), other: f(3), othre: f(3) })).rejects.toThrow(
      /add: unknown tensor 'othre' \(this op reads 'grad_out', 'input', 'x', 'a', 'other', 'y', 'b'\)/,
    );
    // a misspelt optional input would otherwise be left out silently
    await expect(runOp(g, 'matmul', { a: f(3), b: f(3), bais: f(3) })).rejects.toThrow(/matmul: unknown tensor 'bais'/);
    // as would a misspelt upstream grad (taken as zeros)
    await expect(runOp(g, 'gelu', { x: f(3), grad_output: f(3) }, {}, true)).rejects.toThrow(/gelu: unknown tensor 'grad_output'/);
    // an op without a backward reads no grad_<output>
    await expect(runOp(g, 'adamw', { param: f(3), grad: f(3), exp_avg: f(3), exp_avg_sq: f(3), grad_param: f(3) })).rejects.toThrow(/adamw: unknown tensor 'grad_param'/);
  });
  it('refuses an input given under two of its names', async () => {
    await expect(runOp(g, 'add', { input: f(3), x: f(3), other: f(3) })).rejects.toThrow(/add: input 'input' is given twice, as 'input' and 'x'/);
  });
});

describe('pageError', () => {
  it("gives back the page's own error without playwright's prefix and the bundle's stack", () => {
    const e = pageError(new Error("page.evaluate: Error: add: missing input 'other'\n    at canonicalInputs (http://127.0.0.1:1/main.js:1:1)"));
    expect(e.message).toBe("add: missing input 'other'");
    const multi = pageError(new Error('page.evaluate: GpuLostError: WebGPU reported 2 error(s):\nfirst\nsecond\n    at check (main.js:2:3)'));
    expect(multi.name).toBe('GpuLostError');
    expect(multi.message).toBe('WebGPU reported 2 error(s):\nfirst\nsecond');
    const other = new Error('page.goto: net::ERR_CONNECTION_REFUSED');
    expect(pageError(other)).toBe(other);
  });
});
