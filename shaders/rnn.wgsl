// Elman RNN with tanh, one layer, batch_first (torch.nn.RNN): forward and BPTT, one dispatch per timestep
// each way. Layouts (row-major):
//   xp    (B, T, H)   x W_ihᵀ + b_ih for every timestep (one matmul before the recurrence)
//   wt    (H, H)      W_hhᵀ, so that the step's threads (one per unit j) read adjacent weights
//   whh   (H, H)      W_hh as given (backward reads it as is: adjacent j are adjacent there already)
//   hprev (B, T, H)   h_{t-1} (h0 at t = 0): the step's input and dW_hh's right operand
//   out   (B, T, H)   h_t, which is all backward needs (tanh' = 1 − h²);  dg (B, T, H) pre-activation grads
// Step threads: one per hidden unit j, 4 batch rows (the vec4 lanes) and slice of the k loop: h_{t-1}[b, k]
// is the same for a workgroup row (a broadcast) and each weight read serves 4 batch rows. The KS slices'
// partial sums meet in workgroup memory (KS = 1 on SwiftShader, where a long loop per thread is cheapest).
// Invariant: every kernel writes (=) its outputs, never accumulates.

struct Params { B: u32, T: u32, H: u32, t: u32, flags: u32 }

@group(0) @binding(0) var<uniform> p: Params;

// rnn_transpose
@group(0) @binding(1) var<storage, read> tr_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> tr_dst: array<f32>;
// rnn_start
@group(0) @binding(1) var<storage, read> st_h0: array<f32>;
@group(0) @binding(2) var<storage, read_write> st_hprev: array<f32>;
// rnn_step
@group(0) @binding(1) var<storage, read> xp: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bhh: array<f32>;
@group(0) @binding(4) var<storage, read_write> hprev: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
// rnn_finish
@group(0) @binding(1) var<storage, read> fi_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> fi_hn: array<f32>;
// rnn_step_bwd
@group(0) @binding(1) var<storage, read_write> dg: array<f32>;
@group(0) @binding(2) var<storage, read> whh: array<f32>;
@group(0) @binding(3) var<storage, read> sv_out: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> dhn: array<f32>;
// rnn_dh0
@group(0) @binding(1) var<storage, read> d0_dg: array<f32>;
@group(0) @binding(2) var<storage, read> d0_whh: array<f32>;
@group(0) @binding(3) var<storage, read_write> d0_dh0: array<f32>;

override WG: u32 = 64; // rnn_dh0's units per workgroup
override JT: u32 = 64; // step kernels: hidden units per workgroup
override KS: u32 = 1;  // step kernels: slices of the dot products' k loop (partial sums meet in `part`)

var<workgroup> part: array<vec4f, JT * KS>; // [slice][unit] partial sums, 4 batch rows each

// every thread's partial sum v into part[slice][unit], then unit x's total into part[0][x] (read after)
fn reduce_slices(lid: vec3u, v: vec4f) {
  part[lid.y * JT + lid.x] = v;
  workgroupBarrier();
  if (lid.y == 0u) {
    var s = v;
    for (var z = 1u; z < KS; z++) { s += part[z * JT + lid.x]; }
    part[lid.x] = s;
  }
  workgroupBarrier();
}

const HAS_H0: u32 = 1u; // rnn_start flags
const HAS_DOUT: u32 = 1u; // rnn_step_bwd flags
const HAS_DHN: u32 = 2u;

// tanh through exp overflows to NaN on some drivers for |z| > ~44; tanh(±15) is ±1 in fp32 anyway.
fn tanh_s(z: f32) -> f32 { return tanh(clamp(z, -15.0, 15.0)); }

// the 4 batch rows of a step workgroup, clamped to B - 1 for loads (rows past B are never stored)
fn rows(b0: u32) -> vec4u { return min(vec4u(b0, b0 + 1u, b0 + 2u, b0 + 3u), vec4u(p.B - 1u)); }

// wt (H, H) = whh (H, H)ᵀ, one thread per element of wt
@compute @workgroup_size(256)
fn rnn_transpose(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.H * p.H) { return; }
  let k = i / p.H;
  let m = i % p.H;
  tr_dst[i] = tr_src[m * p.H + k];
}

// hprev[:, 0] = h0 (zeros when not given), one thread per (b, j)
@compute @workgroup_size(256)
fn rnn_start(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.B * p.H) { return; }
  var h = 0.0;
  if ((p.flags & HAS_H0) != 0u) { h = st_h0[i]; }
  st_hprev[(i / p.H) * p.T * p.H + i % p.H] = h;
}

// timestep p.t: h_t = tanh(xp_t + h_{t-1} W_hhᵀ + b_hh).
// Workgroup (JT, KS): JT units × 4 batch rows (vec4 lanes), the k loop split into KS slices whose partial
// sums meet in workgroup memory. Grid (⌈H / JT⌉, ⌈B / 4⌉). Reads hprev row t, writes row t+1: no race.
@compute @workgroup_size(JT, KS)
fn rnn_step(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let H = p.H;
  let T = p.T;
  let t = p.t;
  let j = wid.x * JT + lid.x;
  let jc = min(j, H - 1u); // units past H load as H - 1 and store nothing: every thread reaches the barriers
  let b0 = wid.y * 4u;
  let hrow = (rows(b0) * T + t) * H;
  var a = vec4f(0.0);
  for (var k = lid.y; k < H; k += KS) {
    let h = vec4f(hprev[hrow.x + k], hprev[hrow.y + k], hprev[hrow.z + k], hprev[hrow.w + k]);
    a += h * wt[k * H + jc];
  }
  reduce_slices(lid, a);
  if (j >= H) { return; }
  for (var l = lid.y; l < 4u; l += KS) {
    let b = b0 + l;
    if (b >= p.B) { break; }
    let bt = b * T + t;
    let h = tanh_s(part[lid.x][l] + xp[bt * H + j] + bhh[j]);
    out[bt * H + j] = h;
    if (t + 1u < T) { hprev[(bt + 1u) * H + j] = h; }
  }
}

// h_n = out[:, T-1], one thread per (b, j)
@compute @workgroup_size(256)
fn rnn_finish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.B * p.H) { return; }
  fi_hn[i] = fi_out[((i / p.H) * p.T + p.T - 1u) * p.H + i % p.H];
}

// backward timestep p.t (run for t = T-1 down to 0):
//   dh_t = dout_t + (t = T-1 ? dh_n : dg_{t+1} W_hh);  dg_t = dh_t (1 − h_t²)
// Workgroup (JT, KS) as rnn_step, the m loop split into KS slices. Reads dg row t+1, writes dg row t.
@compute @workgroup_size(JT, KS)
fn rnn_step_bwd(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let H = p.H;
  let T = p.T;
  let t = p.t;
  let j = wid.x * JT + lid.x;
  let jc = min(j, H - 1u);
  let b0 = wid.y * 4u;
  let last = t + 1u == T;
  var dh = vec4f(0.0);
  if (!last) {
    let grow = (rows(b0) * T + t + 1u) * H;
    for (var m = lid.y; m < H; m += KS) {
      let d = vec4f(dg[grow.x + m], dg[grow.y + m], dg[grow.z + m], dg[grow.w + m]);
      dh += d * whh[m * H + jc];
    }
  }
  reduce_slices(lid, dh);
  if (j >= H) { return; }
  for (var l = lid.y; l < 4u; l += KS) {
    let b = b0 + l;
    if (b >= p.B) { break; }
    let bt = b * T + t;
    var dht = part[lid.x][l];
    if ((p.flags & HAS_DOUT) != 0u) { dht += dout[bt * H + j]; }
    if (last && (p.flags & HAS_DHN) != 0u) { dht += dhn[b * H + j]; }
    let h = sv_out[bt * H + j];
    dg[bt * H + j] = dht * (1.0 - h * h);
  }
}

// dh0 = dg_0 W_hh, the recurrent grad past the first step. Grid (⌈H / WG⌉, ⌈B / 4⌉).
@compute @workgroup_size(WG)
fn rnn_dh0(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let H = p.H;
  let j = gid.x;
  if (j >= H) { return; }
  let b0 = wid.y * 4u;
  let grow = rows(b0) * p.T * H;
  var dh = vec4f(0.0);
  for (var m = 0u; m < H; m++) {
    let d = vec4f(d0_dg[grow.x + m], d0_dg[grow.y + m], d0_dg[grow.z + m], d0_dg[grow.w + m]);
    dh += d * d0_whh[m * H + j];
  }
  for (var l = 0u; l < 4u; l++) {
    let b = b0 + l;
    if (b >= p.B) { break; }
    d0_dh0[b * H + j] = dh[l];
  }
}
