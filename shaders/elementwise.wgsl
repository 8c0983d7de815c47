// Elementwise ops, forward and backward side by side: gelu (tanh approximation), tanh, sigmoid, residual add.
// One thread per element; 1-D work is laid out over a 2-D grid (x wraps at num_workgroups.x).
// Invariant: forward writes `out` (=), backward writes `dx` (=), never accumulates.

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // forward input, or backward's saved tensor
@group(0) @binding(2) var<storage, read> y: array<f32>;        // second input: add's `other`, or the upstream grad
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256;
const GELU_S: f32 = 0.7978845608028654; // sqrt(2 / pi)
const GELU_C: f32 = 0.044715;

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

// tanh through exp overflows to NaN on some drivers for |z| > ~44; tanh(±15) is ±1 in fp32 anyway.
fn safe_tanh(z: f32) -> f32 { return tanh(clamp(z, -15.0, 15.0)); }

@compute @workgroup_size(WG)
fn gelu_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let v = x[i];
  out[i] = 0.5 * v * (1.0 + safe_tanh(GELU_S * (v + GELU_C * v * v * v)));
}

// x = gelu's input, y = grad of its output
@compute @workgroup_size(WG)
fn gelu_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let v = x[i];
  let t = safe_tanh(GELU_S * (v + GELU_C * v * v * v));
  let dt = GELU_S * (1.0 + 3.0 * GELU_C * v * v);
  out[i] = y[i] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * dt);
}

@compute @workgroup_size(WG)
fn tanh_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  out[i] = safe_tanh(x[i]);
}

// x = tanh's output, y = grad of its output
@compute @workgroup_size(WG)
fn tanh_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let t = x[i];
  out[i] = y[i] * (1.0 - t * t);
}

@compute @workgroup_size(WG)
fn sigmoid_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let v = x[i];
  // split by sign so exp never overflows
  let e = exp(-abs(v));
  out[i] = select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// x = sigmoid's output, y = grad of its output
@compute @workgroup_size(WG)
fn sigmoid_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let s = x[i];
  out[i] = y[i] * s * (1.0 - s);
}

// residual add: out = x + y (its backward is the identity on both inputs; no kernel needed)
@compute @workgroup_size(WG)
fn add_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  out[i] = x[i] + y[i];
}
