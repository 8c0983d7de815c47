// Layout permutes between row-major activations (B·T, P·C) and per-head tensors (B, H, T, D), C = H·D, for up
// to P = 3 parts (GPT's c_attn output [q | k | v]; P = 1 for one (B·T, C) tensor). One thread per element of
// one part's (B, H, T, D), looping over the parts.
//   rows_to_heads: heads_p[b, h, t, d] = rows[(b·T + t)·P·C + p·C + h·D + d]   (qkv.split, .view, .transpose)
//   heads_to_rows: the inverse, writing every element of rows (its backward, and the merge of heads)
// Invariant: sizes come from params, never from arrayLength (pooled buffers can be larger than the tensor);
// parts beyond P are never touched, so their bindings may be any other buffer.

struct Params { B: u32, T: u32, H: u32, D: u32, P: u32 }

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 256;

// rows_to_heads bindings
@group(0) @binding(1) var<storage, read> rows_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> h0_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> h1_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> h2_out: array<f32>;

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

/** the rows offset of element i of one part's (B, H, T, D) tensor, part 0 */
fn rowOffset(i: u32) -> u32 {
  let d = i % p.D;
  let t = (i / p.D) % p.T;
  let h = (i / (p.D * p.T)) % p.H;
  let b = i / (p.D * p.T * p.H);
  let C = p.H * p.D;
  return (b * p.T + t) * p.P * C + h * p.D + d;
}

@compute @workgroup_size(WG)
fn rows_to_heads(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.B * p.T * p.H * p.D) { return; }
  let r = rowOffset(i);
  let C = p.H * p.D;
  h0_out[i] = rows_in[r];
  if (p.P > 1u) { h1_out[i] = rows_in[r + C]; }
  if (p.P > 2u) { h2_out[i] = rows_in[r + 2u * C]; }
}

// heads_to_rows bindings (a second set of names: one module, two entry points with their own layouts)
@group(0) @binding(1) var<storage, read> h0_in: array<f32>;
@group(0) @binding(2) var<storage, read> h1_in: array<f32>;
@group(0) @binding(3) var<storage, read> h2_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> rows_out: array<f32>;

@compute @workgroup_size(WG)
fn heads_to_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.B * p.T * p.H * p.D) { return; }
  let r = rowOffset(i);
  let C = p.H * p.D;
  rows_out[r] = h0_in[i];
  if (p.P > 1u) { rows_out[r + C] = h1_in[i]; }
  if (p.P > 2u) { rows_out[r + 2u * C] = h2_in[i]; }
}
