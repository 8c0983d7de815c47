// Utility kernels: fill a buffer with a 32-bit pattern (zeros, NaN poison in tests), copy.
// Invariant: sizes come from params, never from arrayLength (pooled buffers can be larger than the tensor).

struct Params { n: u32, value: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) { dst[i] = p.value; }
}
