// Elementwise ops, forward and backward side by side: gelu (tanh approximation), tanh, sigmoid, residual add.
// One thread per element, or per 4 elements through vec4 loads (the `*_v4` entry points, used when the size is a
// multiple of 4: 1.4-2.5x the bandwidth on SwiftShader, measured); 1-D work over a 2-D grid (x wraps at num_workgroups.x).
// Invariant: forward writes `out` (=), backward writes `dx` (=), never accumulates.

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // forward input, or backward's saved tensor
@group(0) @binding(2) var<storage, read> y: array<f32>;        // second input: add's `other`, or the upstream grad
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// the same buffers seen as vec4s (p.n then counts vec4s); an entry point uses one view or the other
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(2) var<storage, read> y4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4f>;

override WG: u32 = 256;
const GELU_S: f32 = 0.7978845608028654; // sqrt(2 / pi)
const GELU_C: f32 = 0.044715;

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

// tanh through exp overflows to NaN on some drivers for |z| > ~44; tanh(±15) is ±1 in fp32 anyway.
fn safe_tanh(z: f32) -> f32 { return tanh(clamp(z, -15.0, 15.0)); }
fn safe_tanh4(z: vec4f) -> vec4f { return tanh(clamp(z, vec4f(-15.0), vec4f(15.0))); }

fn gelu4(v: vec4f) -> vec4f { return 0.5 * v * (1.0 + safe_tanh4(GELU_S * (v + GELU_C * v * v * v))); }
fn gelu_grad4(v: vec4f, dy: vec4f) -> vec4f {
  let t = safe_tanh4(GELU_S * (v + GELU_C * v * v * v));
  return dy * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_S * (1.0 + 3.0 * GELU_C * v * v));
}
fn sigmoid4(v: vec4f) -> vec4f {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= vec4f(0.0));
}

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

// vec4 variants: same math, four elements per thread; p.n is the number of vec4s

@compute @workgroup_size(WG)
fn gelu_fwd_v4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i < p.n) { out4[i] = gelu4(x4[i]); }
}

@compute @workgroup_size(WG)
fn gelu_bwd_v4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i < p.n) { out4[i] = gelu_grad4(x4[i], y4[i]); }
}

@compute @workgroup_size(WG)
fn tanh_fwd_v4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i < p.n) { out4[i] = safe_tanh4(x4[i]); }
}

@compute @workgroup_size(WG)
fn tanh_bwd_v4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i < p.n) { let t = x4[i]; out4[i] = y4[i] * (1.0 - t * t); }
}

@compute @workgroup_size(WG)
fn sigmoid_fwd_v4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i < p.n) { out4[i] = sigmoid4(x4[i]); }
}

@compute @workgroup_size(WG)
fn sigmoid_bwd_v4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i < p.n) { let s = x4[i]; out4[i] = y4[i] * s * (1.0 - s); }
}

@compute @workgroup_size(WG)
fn add_fwd_v4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i < p.n) { out4[i] = x4[i] + y4[i]; }
}
