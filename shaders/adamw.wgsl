// One AdamW step (torch.optim.AdamW, amsgrad=False, maximize=False), in place on a segment
// [offset, offset + count) of flat param / grad / exp_avg / exp_avg_sq buffers. One thread per element.
// Invariant: reads and writes only its own element of each buffer, so any segment can run on its own.
// The host folds the scalars in float64: decay = 1 − lr·wd, 1 − β1, 1 − β2, step_size = lr / (1 − β1^t),
// bc2_sqrt = sqrt(1 − β2^t).

struct Params {
  offset: u32,
  count: u32,
  decay: f32,
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32, // from the host in float64: 1 − f32(0.999) would be off by 1.3e-5 relative
  one_minus_beta2: f32,
  eps: f32,
  step_size: f32,
  bc2_sqrt: f32,
  grad_scale: f32,   // multiplies grad first: gradient clipping and accumulation averaging in the same pass
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg_sq: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn adamw_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = gid.x + gid.y * nwg.x * WG;
  if (k >= p.count) { return; }
  let i = p.offset + k;
  let g = grad[i] * p.grad_scale;
  let m = p.beta1 * exp_avg[i] + p.one_minus_beta1 * g;
  let v = p.beta2 * exp_avg_sq[i] + p.one_minus_beta2 * g * g;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  // torch's order: decay first, then param −= step_size · m / (sqrt(v) / bc2_sqrt + eps)
  param[i] = param[i] * p.decay - p.step_size * (m / (sqrt(v) / p.bc2_sqrt + p.eps));
}
