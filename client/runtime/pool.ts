// Buffer pool: storage buffers are recycled by size class (powers of two above 256 bytes, plus an
// eighth-step in between so a 1.1x request does not take a 2x buffer), so a training step allocates nothing
// once warm. shared/models/memory.ts replays a training step through the same classes to estimate its memory.
import { poolSizeClass } from '../../shared/models/memory.ts';

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  allocatedBytes = 0;
  /** `maxBytes`: the largest buffer the device allows; a size class above it falls back to the exact size */
  constructor(private device: GPUDevice, private usage: GPUBufferUsageFlags, private maxBytes = Infinity) {}

  static sizeClass(bytes: number): number {
    return poolSizeClass(bytes);
  }

  acquire(bytes: number, label?: string): GPUBuffer {
    const c = BufferPool.sizeClass(bytes);
    // near a limit that is not a power of two (e.g. 2^31 - 4), rounding up would ask for a buffer too large to bind
    const size = c <= this.maxBytes ? c : bytes;
    const list = this.free.get(size);
    const buf = list?.pop();
    if (buf) return buf;
    this.allocatedBytes += size;
    return this.device.createBuffer({ size, usage: this.usage, label });
  }

  release(buf: GPUBuffer): void {
    const list = this.free.get(buf.size) ?? [];
    list.push(buf);
    this.free.set(buf.size, list);
  }

  destroy(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.allocatedBytes = 0;
  }
}
