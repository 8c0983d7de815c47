// The volunteer page: checks WebGPU, opens the GPU, connects to the coordinator that served it and runs the worker
// loop (client/worker/loop.ts), showing what it does in words.
import { io } from 'socket.io-client';
import { parser } from '../../shared/codec.ts';
import { openGpu } from '../runtime/index.ts';
import { Worker, type WorkerSocket, type WorkerStatus } from '../worker/loop.ts';

const $ = (id: string) => document.getElementById(id)!;

function show(state: string, text: string): void {
  const el = $('status');
  el.dataset.state = state;
  el.textContent = text;
}

async function main(): Promise<void> {
  if (!('gpu' in navigator)) {
    show('no-webgpu', 'This browser has no WebGPU. Use a recent Chrome or Edge (or Firefox Nightly / Safari Technology Preview) over https or on localhost.');
    return;
  }
  let gpu;
  try {
    gpu = await openGpu(navigator.gpu);
  } catch (e) {
    show('no-gpu', `No usable GPU: ${(e as Error).message}`);
    return;
  }
  $('gpu').textContent = `${gpu.adapterName}${gpu.isFallback ? ' (software)' : ''}`;
  const socket = io(location.origin, { parser, transports: ['websocket'] }) as WorkerSocket;
  const worker = new Worker({
    gpu,
    socket,
    hello: { kind: 'browser', adapter: gpu.adapterName, fallback: gpu.isFallback, name: 'browser' },
    fetchBytes: async (path) => {
      const r = await fetch(new URL(path, location.origin));
      if (!r.ok) throw new Error(`GET ${path}: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    },
    onStatus: (s: WorkerStatus) => {
      show(s.state, s.message);
      if (s.run) $('run').textContent = `${s.run.name} (${s.run.model}, ${(s.run.params / 1e6).toFixed(2)} M parameters)`;
      $('samples').textContent = String(s.samples);
      $('steps').textContent = String(s.steps);
    },
    onProgress: (p) => {
      $('step').textContent = `${p.step} / ${p.maxSteps}`;
      if (p.loss !== undefined) $('loss').textContent = p.loss.toFixed(4);
    },
  });
  (window as unknown as { gradswarmWorker: Worker }).gradswarmWorker = worker;
  window.addEventListener('pagehide', () => socket.close());
  await worker.run();
}

main().catch((e) => show('error', `Something went wrong: ${(e as Error).message}`));
