import { KERNELS } from '../../client/kernels.ts';
import { SPECS } from '../../shared/reference/index.ts';

export function kernelsCommand(): void {
  console.log('ops:');
  for (const s of SPECS) {
    const ins = s.inputs.map((i) => `${i.name}${i.optional ? '?' : ''}`).join(', ');
    console.log(`  ${s.name.padEnd(14)} ${s.torch}\n  ${''.padEnd(14)} inputs: ${ins}  outputs: ${s.outputs.join(', ')}${s.hasBackward ? '' : '  (no backward)'}`);
  }
  console.log(`\nkernels (${KERNELS.length}):`);
  for (const k of KERNELS) console.log(`  shaders/${k.file.padEnd(18)} ${k.entry}`);
}
