// `gradswarm` — the command line. Each command lives in its own file; this one wires them to commander.
import { Command, Option } from 'commander';
import { benchCommand } from './bench.ts';
import { checkCommand } from './check.ts';
import { kernelsCommand } from './kernels.ts';
import { opCommand } from './op.ts';
import { trainCommand } from './train.ts';

const program = new Command();
program.name('gradswarm').description('Distributed training of sequence models in a swarm of volunteer browsers').showHelpAfterError();

const runtime = () => new Option('--runtime <where>', 'where kernels run: headless Chromium, or Node through Dawn').choices(['browser', 'node']).default('browser');

program
  .command('check')
  .description('run every kernel, forward and backward, on fresh random inputs against the float64 CPU reference')
  .option('--op <names>', 'comma-separated ops to check (default: all)')
  .option('--quick', 'leave out the large cases')
  .option('--seed <n>', 'seed for the random inputs (default: fresh)', Number)
  .addOption(runtime())
  .action(checkCommand);

program
  .command('op')
  .description('run one op on your GPU: inputs from a safetensors file by their PyTorch names, outputs to another')
  .argument('<name>', 'op name (see `gradswarm kernels` or docs/kernels.md)')
  .requiredOption('--in <file>', 'input safetensors: tensors by argument name, options as JSON in __metadata__')
  .requiredOption('--out <file>', 'output safetensors: `out` (and h_n, c_n, ...), plus grad_<input> with --grad')
  .option('--grad', 'also run backward: the input file holds grad_<output>, the output gets grad_<input>')
  .addOption(runtime())
  .action(opCommand);

program.command('kernels').description('list the ops and every WGSL kernel in the registry').action(kernelsCommand);

program
  .command('bench')
  .description('time our kernels against @tensorflow/tfjs (webgpu) and @jax-js/jax in headless Chromium; writes bench/RESULTS.md')
  .argument('<what>', "which benchmark: 'kernels'")
  .option('--only <ops>', 'comma-separated ops to time (default: all)')
  .option('--quick', 'fewer, smaller sizes')
  .option('--out <file>', 'markdown report path (default: bench/RESULTS.md)')
  .option('--no-peers', 'time our kernels only')
  .option('--runs <n>', 'timed runs per row; the median is reported (default 7)', Number)
  .option('--min-ms <ms>', 'each timed run repeats the call until it lasts this long (default 100)', Number)
  .option('--seed <n>', 'seed for the random inputs (default: fresh)', Number)
  .action(benchCommand);

program
  .command('train')
  .description('train a model on one worker from a run config file or a preset name (coordinator/presets/)')
  .argument('<config>', 'run config JSON {model, data, optim, train}, or a preset name such as gpt-char-small')
  .addOption(new Option('--runtime <where>', 'where the kernels run (browser: not available for training yet)').choices(['browser', 'node']).default('node'))
  .option('--resume', "continue from the newest checkpoint in the config's train.out_dir (weights, optimizer state, step)")
  .action(trainCommand);

program.parseAsync().catch((e: Error) => {
  console.error(`gradswarm: ${e.message}`);
  process.exit(1);
});
