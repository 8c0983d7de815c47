// `gradswarm op NAME --in in.safetensors --out out.safetensors [--grad] [--runtime browser|node]`
import { readFileSync, writeFileSync } from 'node:fs';
import { openOpHost, type RuntimeName } from '../../client/host/op-host.ts';
import { readSafetensors } from '../../shared/safetensors.ts';
import { spec } from '../../client/runner.ts';
import { ROOT } from './root.ts';

/** metadata keys that other writers (safetensors.torch writes `format`) or we ourselves put in files */
const NOT_OPTIONS = ['format', 'op', 'adapter', 'note', 'comment'];

/** scalar options arrive as strings in __metadata__; each holds JSON (`true`, `1e-5`, `[0.9, 0.95]`) */
export function optionsFromMetadata(meta: Record<string, string>, known: string[]): Record<string, unknown> {
  const opts: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta)) {
    if (NOT_OPTIONS.includes(k)) continue;
    if (!known.includes(k)) {
      // a misspelt option must not be silently ignored
      throw new Error(`unknown option '${k}' in __metadata__ (${known.length ? `this op takes: ${known.join(', ')}` : 'this op takes none'})`);
    }
    try {
      opts[k] = JSON.parse(v);
    } catch {
      throw new Error(`option '${k}' in __metadata__ is not JSON: ${JSON.stringify(v)} (write e.g. "true", "1e-5", "[0.9, 0.999]")`);
    }
  }
  return opts;
}

export async function opCommand(name: string, o: { in: string; out: string; grad?: boolean; runtime: RuntimeName }): Promise<void> {
  const s = spec(name);
  const bytes = new Uint8Array(readFileSync(o.in));
  const file = readSafetensors(bytes);
  const options = optionsFromMetadata(file.metadata, Object.keys(s.defaults));
  const host = await openOpHost(o.runtime, ROOT);
  try {
    const info = await host.info();
    const out = await host.runOpFile(name, bytes, Boolean(o.grad), options);
    writeFileSync(o.out, out);
    const names = Object.keys(readSafetensors(out).tensors);
    console.log(`${name}${o.grad ? ' (forward + backward)' : ''} on ${info.adapter}: wrote ${names.join(', ')} to ${o.out}`);
  } finally {
    await host.close();
  }
}
