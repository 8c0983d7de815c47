// `gradswarm` — the command line. Each command lives in its own file; this one wires them to commander.
import { Command, Option } from 'commander';
import { benchCommand } from './bench.ts';
import { checkCommand } from './check.ts';
import { kernelsCommand } from './kernels.ts';
import { evalCommand, gradCommand, MOBY_DICK, sampleCommand } from './model-commands.ts';
import { opCommand } from './op.ts';
import { runControl, runCreate, runExport, runList, runStatus } from './run.ts';
import { startCommand } from './start.ts';
import { trainCommand } from './train.ts';
import { workerCommand } from './worker.ts';

const program = new Command();
program.name('gradswarm').description('Distributed training of sequence models in a swarm of volunteer browsers').showHelpAfterError();

const runtime = () => new Option('--runtime <where>', 'where kernels run: headless Chromium, or Node through Dawn').choices(['browser', 'node']).default('browser');

program
  .command('start')
  .description('start the coordinator: the volunteer page, the runs, socket.io and the status API on one port')
  .option('--port <n>', 'HTTP port (or PORT)', '8080')
  .option('--host <addr>', 'address to listen on', '0.0.0.0')
  .option('--data-dir <dir>', 'checkpoints and run state', './gradswarm-data')
  .option('--config <file>', 'add a run from this config JSON or preset name (the first start with none: swarm-gpt-char); runs in --data-dir always come back')
  .option('--run-id <id>', 'the run\'s id (default: the config file\'s name); a run resumes from its checkpoints under --data-dir')
  .option('--no-volunteer', 'do not open a local headless Chromium volunteer')
  .action(startCommand);

const runCmd = program.command('run').description('create, watch and steer runs on a running coordinator (admin token required)');
const adminOpts = (c: Command) =>
  c
    .option('--coordinator <url>', 'the coordinator', process.env.GRADSWARM_COORDINATOR ?? 'http://127.0.0.1:8080')
    .option('--token <token>', 'admin token (default: GRADSWARM_TOKEN, or <data-dir>/admin-token)')
    .option('--data-dir <dir>', "the coordinator's data dir, to read its admin-token file", './gradswarm-data');
adminOpts(runCmd.command('create').description('create a run from a run config JSON').argument('<config>', 'run config file').option('--id <id>', 'run id').option('--name <name>', 'display name')).action(runCreate);
adminOpts(runCmd.command('list').description('the runs: status, step, loss, tokens/s, workers')).action(runList);
adminOpts(
  runCmd
    .command('status')
    .description('live progress of a run (step, samples, loss, tokens/s, workers) until it ends; Ctrl-C leaves')
    .argument('<id>')
    .option('--once', 'print one line and exit')
    .option('--interval <s>', 'seconds between updates', '1'),
).action(runStatus);
for (const action of ['pause', 'resume', 'stop'] as const) {
  adminOpts(runCmd.command(action).description(`${action} a run`).argument('<id>')).action((id: string, o) => runControl(action, id, o));
}
adminOpts(
  runCmd
    .command('export')
    .description('download the current weights as a checkpoint (safetensors with PyTorch names)')
    .argument('<id>')
    .requiredOption('--out <file>', 'where to write it'),
).action(runExport);

program
  .command('worker')
  .description('a headless volunteer on Node (WebGPU through Dawn): joins a coordinator and computes gradients')
  .requiredOption('--coordinator <url>', 'the coordinator, e.g. http://127.0.0.1:8080')
  .option('--name <name>', 'how the console names this worker (default: the host name)')
  .option('--no-supervise', 'run in this process instead of a child process that is restarted if it crashes')
  .option('--identity-file <file>', 'keep the identity token the coordinator gives (its record of this volunteer) in this file, to come back as the same volunteer (default: for as long as this command runs)')
  .option('--seconds <n>', 'stop after this many seconds', Number)
  .option('--quiet', 'print nothing but errors')
  .action(workerCommand);

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
  .description(
    'in headless Chromium, time our kernels against @tensorflow/tfjs (webgpu) and @jax-js/jax (kernels), or full training steps of each family preset against the same model in tfjs, with the GPU memory a step holds (train); the coordinator under simulated workers and the default run with 1 and 2 volunteers (swarm); writes bench/RESULTS.md',
  )
  .argument('<what>', "which benchmark: 'kernels', 'train', 'swarm', 'learning' or 'reliability'")
  .option('--only <names>', 'comma-separated ops (kernels), presets / families, e.g. gpt-char-small,lstm (train), or parts: 1M, 10M, 10M:64, volunteers (swarm) (default: all)')
  .option('--quick', 'fewer, smaller sizes (kernels); fewer steps and no memory runs of the default configs (train); fewer configurations and shorter windows (swarm)')
  .option('--out <file>', 'markdown report path (default: bench/RESULTS.md)')
  .option('--no-peers', 'time ours only')
  .option('--runs <n>', 'timed runs per row, or timed training steps per model; the median is reported (default: kernels 7; train 7 ours, 3 tfjs)', Number)
  .option('--min-ms <ms>', 'each timed run repeats the call until it lasts this long (default 100)', Number)
  .option('--seed <n>', 'seed for the random inputs (default: fresh)', Number)
  .action(benchCommand);

program
  .command('train')
  .description('train a model on one worker from a run config file or a preset name (coordinator/presets/)')
  .argument('<config>', 'run config JSON {model, data, optim, train}, or a preset name such as gpt-char-small')
  .addOption(runtime())
  .option('--resume', "continue from the newest checkpoint in the config's train.out_dir (weights, optimizer state, step)")
  .action(trainCommand);

const nodeOnly = () =>
  new Option('--runtime <where>', 'where the kernels run: Node through Dawn (the default and, for this command, the only runtime)').choices(['node']).default('node');

program
  .command('grad')
  .description('loss and gradients of one batch for a checkpoint; the gradient file uses the checkpoint\'s PyTorch tensor names')
  .requiredOption('--checkpoint <file>', 'checkpoint safetensors (as `gradswarm train` writes)')
  .requiredOption('--batch <file>', 'safetensors with `idx` and `targets`: integer (I32/I64) tensors of shape (B, T); target -1 is ignored')
  .requiredOption('--out <file>', 'gradient safetensors: one F32 tensor per state_dict name, the loss in __metadata__.loss; gpt\'s lm_head.weight and transformer.wte.weight both hold the full gradient of the one tied tensor (not to be added)')
  .addOption(nodeOnly())
  .action(gradCommand);

program
  .command('eval')
  .description('validation loss (nats/char) of a checkpoint on the fixed validation batches of a corpus')
  .requiredOption('--checkpoint <file>', 'checkpoint safetensors')
  .option('--batches <n>', 'number of fixed validation batches', '8')
  .option('--batch-size <B>', 'rows per batch', '16')
  .option('--block-size <T>', 'sequence length (default 64, at most the gpt block_size)')
  .option('--corpus <spec>', `'${MOBY_DICK}', or a text file or folder of .txt files (tokenized with the checkpoint's vocabulary)`, MOBY_DICK)
  .addOption(nodeOnly())
  .action(evalCommand);

program
  .command('sample')
  .description('print the prompt followed by text generated by a checkpoint')
  .requiredOption('--checkpoint <file>', 'checkpoint safetensors')
  .requiredOption('--prompt <text>', 'text to continue; every character must be in the checkpoint\'s vocabulary')
  .option('--tokens <n>', 'characters to generate', '200')
  .option('--temperature <t>', 'softmax temperature; 0 is greedy (argmax)', '0.8')
  .option('--seed <n>', 'seed of the sampler (default: fresh, printed on stderr)')
  .option('--top-k <k>', 'sample only among the k most likely characters')
  .addOption(nodeOnly())
  .action(sampleCommand);

program.parseAsync().catch((e: Error) => {
  console.error(`gradswarm: ${e.message}`);
  process.exit(1);
});
