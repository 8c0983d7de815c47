// WebGPU in Node through the npm package `webgpu` (Google's Dawn), for servers and CI without a browser.
// Dawn crashes if the object create() returns, or the adapter, is garbage-collected while the device
// lives (../shared/ENVIRONMENT.md): Gpu keeps both in its keepAlive list for the device's whole life.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { GpuUnavailableError } from '../runtime/device.ts';
import { openGpu } from '../runtime/index.ts';
import type { Gpu } from '../runtime/gpu.ts';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export async function openNodeGpu(): Promise<Gpu> {
  // Without a GPU driver, fall back to Chromium's SwiftShader Vulkan driver when it is installed.
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD) && !existsSync('/dev/dri') && !existsSync('/dev/nvidia0')) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  // Vulkan's window-system probing complains on every start without it; compute needs no display.
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  let webgpu: typeof import('webgpu');
  try {
    webgpu = await import('webgpu');
  } catch (e) {
    throw new Error(`the Node WebGPU runtime (npm package 'webgpu') failed to load: ${(e as Error).message}`);
  }
  Object.assign(globalThis, webgpu.globals);
  const gpu = webgpu.create([]);
  try {
    return await openGpu(gpu, {}, [gpu, webgpu]);
  } catch (e) {
    if (!(e instanceof GpuUnavailableError)) throw e;
    throw new GpuUnavailableError(
      `Dawn found no usable Vulkan adapter (${e.message.split(':')[0]}). Install the Vulkan loader and a driver ` +
        '(Debian: apt-get install -y libvulkan1, plus your GPU vendor\'s driver), or install Chromium so its ' +
        `SwiftShader driver (${SWIFTSHADER_ICD}) can stand in; VK_ICD_FILENAMES picks a driver explicitly.`,
    );
  }
}
