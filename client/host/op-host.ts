// Where ops run for the CLI: in headless Chromium (the volunteers' runtime) or in Node through Dawn.
// Both give the same interface, so `gradswarm op` and `gradswarm check` do not care which.
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../../shared/safetensors.ts';
import type { CheckResult } from '../runner.ts';
import { checkOp, runOp } from '../runner.ts';
import { openBrowserPage } from './browser.ts';
import { openNodeGpu } from './node-gpu.ts';

export type RuntimeName = 'browser' | 'node';

export interface OpHost {
  info(): Promise<{ adapter: string; fallback: boolean }>;
  checkOp(op: string, caseName: string, seed: number): Promise<CheckResult>;
  /** safetensors bytes in (inputs, grad_<output>s), safetensors bytes out */
  runOpFile(op: string, file: Uint8Array, grad: boolean, options: Record<string, unknown>): Promise<Uint8Array>;
  close(): Promise<void>;
}

export async function openOpHost(runtime: RuntimeName, root: string, log?: (l: string) => void): Promise<OpHost> {
  if (runtime === 'node') {
    const g = await openNodeGpu();
    return {
      info: async () => ({ adapter: g.adapterName, fallback: g.isFallback }),
      checkOp: (op, c, seed) => checkOp(g, op, c, seed),
      async runOpFile(op, file, grad, options) {
        const out = await runOp(g, op, readSafetensors(file).tensors, options, grad);
        return writeSafetensors(out, { op, adapter: g.adapterName });
      },
      close: async () => g.destroy(),
    };
  }
  const bp = await openBrowserPage(join(root, 'client', 'harness.ts'), { log });
  const call = <T>(fn: string, ...args: unknown[]) =>
    (bp.page.evaluate(([f, a]) => (window as any).gradswarm[f as string](...(a as unknown[])), [fn, args] as const) as Promise<T>).catch((e: unknown) => {
      throw pageError(e);
    });
  return {
    info: () => call('info'),
    checkOp: (op, c, seed) => call('checkOp', op, c, seed),
    async runOpFile(op, file, grad, options) {
      const b64 = await call<string>('runOpFile', op, Buffer.from(file).toString('base64'), grad, options);
      return new Uint8Array(Buffer.from(b64, 'base64'));
    },
    close: () => bp.close(),
  };
}


/**
 * An error thrown in the page arrives as "page.evaluate: Error: <message>\n    at <bundle frames>": give it
 * back as the page's own error (name and message, possibly several lines), so the CLI prints what the op said.
 */
export function pageError(e: unknown): Error {
  if (!(e instanceof Error)) return new Error(String(e));
  const m = /^page\.evaluate: (?:(\w*Error): )?([\s\S]*)$/.exec(e.message);
  if (!m) return e;
  const lines = m[2].split('\n');
  const stack = lines.findIndex((l) => /^\s+at /.test(l));
  const err = new Error(lines.slice(0, stack < 0 ? undefined : stack).join('\n'));
  if (m[1]) err.name = m[1];
  return err;
}
