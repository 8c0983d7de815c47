// What stops the page from helping, said so that a volunteer knows what to do next. Each problem has a state
// (the status line's data-state), a title, a text and whether reloading may help.

export interface Problem {
  state: 'insecure' | 'no-webgpu' | 'no-adapter' | 'no-device' | 'lost' | 'error';
  title: string;
  text: string;
  /** the label of the reload button, or undefined when reloading cannot help */
  action?: string;
}

/** what is missing before we can ask for a GPU, or undefined when WebGPU is there */
export function webgpuProblem(): Problem | undefined {
  if (!window.isSecureContext) {
    return {
      state: 'insecure',
      title: 'This page must be opened over a secure address',
      text:
        'Browsers offer WebGPU only to secure pages. Open this page with an https:// address, or on the computer ' +
        `that runs the coordinator as http://localhost:${location.port || 80}/.`,
    };
  }
  if (!('gpu' in navigator) || !navigator.gpu) {
    return {
      state: 'no-webgpu',
      title: 'Your browser has no WebGPU',
      text:
        'This page trains on your GPU through WebGPU, which your browser does not offer. Use a current Chrome or Edge ' +
        '(version 113 or later) on Windows, macOS or ChromeOS, Safari 26 on macOS, or Firefox 141 or later on Windows. ' +
        'On Linux, Chrome needs it switched on: open chrome://flags/#enable-unsafe-webgpu, choose Enabled and restart Chrome.',
    };
  }
  return undefined;
}

/** opening the GPU failed: no adapter, or the adapter refused a device */
export function gpuOpenProblem(message: string): Problem {
  if (/no GPU adapter/i.test(message)) {
    return {
      state: 'no-adapter',
      title: 'Your browser did not offer a GPU',
      text:
        'WebGPU is there, but the browser gave this page no GPU: it may have blocked your graphics card or driver. ' +
        'Open chrome://gpu (or edge://gpu) to see why; updating the browser and the graphics driver usually fixes it.',
      action: 'Try again',
    };
  }
  return { state: 'no-device', title: 'Your GPU could not be started', text: message, action: 'Try again' };
}

/** `detail`: the browser's GPUDeviceLostInfo message (or reason) */
export function lostProblem(detail: string): Problem {
  return {
    state: 'lost',
    title: 'Your GPU stopped working for this page',
    text:
      `The browser reported that the GPU device was lost${detail ? ` (${detail})` : ''}. This happens when the graphics ` +
      'driver crashes or updates, when the computer sleeps, or when another program needs the GPU. ' +
      'Reload to start again; your settings are kept.',
    action: 'Reload',
  };
}

export function errorProblem(message: string): Problem {
  return { state: 'error', title: 'Something went wrong', text: message, action: 'Try again' };
}
