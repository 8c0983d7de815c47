// LSTM, one layer, batch_first (torch.nn.LSTM): forward and BPTT, one dispatch per timestep each way.
// Gate order i, f, g, o: block k of the 4H gate axis is rows k·H .. (k+1)·H of weight_ih / weight_hh.
// Layouts (row-major):
//   xp    (B, T, 4H)   x W_ihᵀ + b_ih for every timestep (one matmul before the recurrence)
//   wt    (H, 4H)      W_hhᵀ, so that the step's threads (one per unit j) read adjacent weights
//   whh   (4H, H)      W_hh as given (backward reads it as is: adjacent j are adjacent there already)
//   hprev (B, T, H)    h_{t-1} (h0 at t = 0): the step's input and dW_hh's right operand
//   cs    (B, T+1, H)  c_{t-1} at index t: c0 at 0, c_n at T
//   gates (B, T, 4H)   activated i, f, g, o;  dg (B, T, 4H) grads of the pre-activations
// Step threads: one per hidden unit j, 4 batch rows (the vec4 lanes) and slice of the k loop: h_{t-1}[b, k]
// is the same for a workgroup row (a broadcast) and each weight read serves 4 batch rows. The KS slices'
// partial sums meet in workgroup memory (KS = 1 on SwiftShader, where a long loop per thread is cheapest).
// Invariant: every kernel writes (=) its outputs, never accumulates (dc, carried between backward steps,
// is overwritten by the same thread that reads it).

struct Params { B: u32, T: u32, H: u32, t: u32, flags: u32 }

@group(0) @binding(0) var<uniform> p: Params;

// lstm_transpose
@group(0) @binding(1) var<storage, read> tr_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> tr_dst: array<f32>;
// lstm_start
@group(0) @binding(1) var<storage, read> st_h0: array<f32>;
@group(0) @binding(2) var<storage, read> st_c0: array<f32>;
@group(0) @binding(3) var<storage, read_write> st_hprev: array<f32>;
@group(0) @binding(4) var<storage, read_write> st_cs: array<f32>;
// lstm_step
@group(0) @binding(1) var<storage, read> xp: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bhh: array<f32>;
@group(0) @binding(4) var<storage, read_write> hprev: array<f32>;
@group(0) @binding(5) var<storage, read_write> cs: array<f32>;
@group(0) @binding(6) var<storage, read_write> gates: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
// lstm_finish
@group(0) @binding(1) var<storage, read> fi_out: array<f32>;
@group(0) @binding(2) var<storage, read> fi_cs: array<f32>;
@group(0) @binding(3) var<storage, read_write> fi_hn: array<f32>;
@group(0) @binding(4) var<storage, read_write> fi_cn: array<f32>;
// lstm_step_bwd
@group(0) @binding(1) var<storage, read_write> dg: array<f32>;
@group(0) @binding(2) var<storage, read> whh: array<f32>;
@group(0) @binding(3) var<storage, read> sv_gates: array<f32>;
@group(0) @binding(4) var<storage, read> sv_cs: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read> dhn: array<f32>;
@group(0) @binding(7) var<storage, read> dcn: array<f32>;
@group(0) @binding(8) var<storage, read_write> dc: array<f32>;
// lstm_dh0
@group(0) @binding(1) var<storage, read> d0_dg: array<f32>;
@group(0) @binding(2) var<storage, read> d0_whh: array<f32>;
@group(0) @binding(3) var<storage, read_write> d0_dh0: array<f32>;

override WG: u32 = 64; // lstm_dh0's units per workgroup
override JT: u32 = 64; // step kernels: hidden units per workgroup
override KS: u32 = 1;  // step kernels: slices of the dot products' k loop (partial sums meet in `part`)

var<workgroup> part: array<vec4f, 4u * JT * KS>; // [slice][unit][gate] partial sums, 4 batch rows each

const HAS_H0: u32 = 1u; // lstm_start flags
const HAS_C0: u32 = 2u;
const HAS_DOUT: u32 = 1u; // lstm_step_bwd flags
const HAS_DHN: u32 = 2u;
const HAS_DCN: u32 = 4u;

fn sigm(v: f32) -> f32 {
  let e = exp(-abs(v)); // split by sign so exp never overflows
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// tanh through exp overflows to NaN on some drivers for |z| > ~44; tanh(±15) is ±1 in fp32 anyway.
fn tanh_s(z: f32) -> f32 { return tanh(clamp(z, -15.0, 15.0)); }

// the 4 batch rows of a step workgroup, clamped to B - 1 for loads (rows past B are never stored)
fn rows(b0: u32) -> vec4u { return min(vec4u(b0, b0 + 1u, b0 + 2u, b0 + 3u), vec4u(p.B - 1u)); }

// wt (H, 4H) = whh (4H, H)ᵀ, one thread per element of wt
@compute @workgroup_size(256)
fn lstm_transpose(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let GH = 4u * p.H;
  if (i >= GH * p.H) { return; }
  let k = i / GH;
  let m = i % GH;
  tr_dst[i] = tr_src[m * p.H + k];
}

// hprev[:, 0] = h0 and cs[:, 0] = c0 (zeros when not given), one thread per (b, j)
@compute @workgroup_size(256)
fn lstm_start(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.B * p.H) { return; }
  let b = i / p.H;
  let j = i % p.H;
  var h = 0.0;
  var c = 0.0;
  if ((p.flags & HAS_H0) != 0u) { h = st_h0[i]; }
  if ((p.flags & HAS_C0) != 0u) { c = st_c0[i]; }
  st_hprev[b * p.T * p.H + j] = h;
  st_cs[b * (p.T + 1u) * p.H + j] = c;
}

// timestep p.t: a = xp_t + h_{t-1} W_hhᵀ + b_hh; c_t = f c_{t-1} + i g; h_t = o tanh(c_t).
// Workgroup (JT, KS): JT units × 4 batch rows (vec4 lanes), the k loop split into KS slices whose partial
// sums meet in workgroup memory. Grid (⌈H / JT⌉, ⌈B / 4⌉). Reads hprev row t, writes row t+1: no race.
@compute @workgroup_size(JT, KS)
fn lstm_step(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let H = p.H;
  let T = p.T;
  let t = p.t;
  let GH = 4u * H;
  let j = wid.x * JT + lid.x;
  let jc = min(j, H - 1u); // units past H load as H - 1 and store nothing: every thread reaches the barriers
  let b0 = wid.y * 4u;
  let hrow = (rows(b0) * T + t) * H;
  var ai = vec4f(0.0);
  var af = vec4f(0.0);
  var ag = vec4f(0.0);
  var ao = vec4f(0.0);
  for (var k = lid.y; k < H; k += KS) {
    let h = vec4f(hprev[hrow.x + k], hprev[hrow.y + k], hprev[hrow.z + k], hprev[hrow.w + k]);
    let w = k * GH + jc;
    ai += h * wt[w];
    af += h * wt[w + H];
    ag += h * wt[w + 2u * H];
    ao += h * wt[w + 3u * H];
  }
  let q = (lid.y * JT + lid.x) * 4u;
  part[q] = ai;
  part[q + 1u] = af;
  part[q + 2u] = ag;
  part[q + 3u] = ao;
  workgroupBarrier();
  // gate g of unit x, summed over the slices into slice 0's slot (which only this thread reads here)
  for (var g = lid.y; g < 4u; g += KS) {
    var s = part[lid.x * 4u + g];
    for (var z = 1u; z < KS; z++) { s += part[(z * JT + lid.x) * 4u + g]; }
    part[lid.x * 4u + g] = s;
  }
  workgroupBarrier();
  if (j >= H) { return; }
  for (var l = lid.y; l < 4u; l += KS) {
    let b = b0 + l;
    if (b >= p.B) { break; }
    let bt = b * T + t;
    let x = bt * GH + j;
    let a = lid.x * 4u;
    let i = sigm(part[a][l] + xp[x] + bhh[j]);
    let f = sigm(part[a + 1u][l] + xp[x + H] + bhh[j + H]);
    let g = tanh_s(part[a + 2u][l] + xp[x + 2u * H] + bhh[j + 2u * H]);
    let o = sigm(part[a + 3u][l] + xp[x + 3u * H] + bhh[j + 3u * H]);
    let c = f * cs[(b * (T + 1u) + t) * H + j] + i * g;
    let h = o * tanh_s(c);
    cs[(b * (T + 1u) + t + 1u) * H + j] = c;
    out[bt * H + j] = h;
    if (t + 1u < T) { hprev[(bt + 1u) * H + j] = h; }
    gates[x] = i;
    gates[x + H] = f;
    gates[x + 2u * H] = g;
    gates[x + 3u * H] = o;
  }
}

// h_n = out[:, T-1], c_n = cs[:, T], one thread per (b, j)
@compute @workgroup_size(256)
fn lstm_finish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.B * p.H) { return; }
  let b = i / p.H;
  let j = i % p.H;
  fi_hn[i] = fi_out[(b * p.T + p.T - 1u) * p.H + j];
  fi_cn[i] = fi_cs[(b * (p.T + 1u) + p.T) * p.H + j];
}

// backward timestep p.t (run for t = T-1 down to 0):
//   dh_t = dout_t + (t = T-1 ? dh_n : dg_{t+1} W_hh);  dc_t = (t = T-1 ? dc_n : dc)
//   writes dg_t (pre-activation grads) and dc = dc_{t-1} = dc_t' f (dc0 after t = 0).
// Workgroup (JT, KS) as lstm_step, the m loop split into KS slices. Reads dg row t+1, writes dg row t.
@compute @workgroup_size(JT, KS)
fn lstm_step_bwd(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let H = p.H;
  let T = p.T;
  let t = p.t;
  let GH = 4u * H;
  let j = wid.x * JT + lid.x;
  let jc = min(j, H - 1u);
  let b0 = wid.y * 4u;
  let last = t + 1u == T;
  var dh = vec4f(0.0);
  if (!last) {
    let grow = (rows(b0) * T + t + 1u) * GH;
    for (var m = lid.y; m < GH; m += KS) {
      let d = vec4f(dg[grow.x + m], dg[grow.y + m], dg[grow.z + m], dg[grow.w + m]);
      dh += d * whh[m * H + jc];
    }
  }
  part[lid.y * JT + lid.x] = dh;
  workgroupBarrier();
  if (lid.y == 0u) {
    for (var z = 1u; z < KS; z++) { dh += part[z * JT + lid.x]; }
    part[lid.x] = dh;
  }
  workgroupBarrier();
  if (j >= H) { return; }
  for (var l = lid.y; l < 4u; l += KS) {
    let b = b0 + l;
    if (b >= p.B) { break; }
    let bt = b * T + t;
    var dht = part[lid.x][l];
    var dct = 0.0;
    if ((p.flags & HAS_DOUT) != 0u) { dht += dout[bt * H + j]; }
    if (last) {
      if ((p.flags & HAS_DHN) != 0u) { dht += dhn[b * H + j]; }
      if ((p.flags & HAS_DCN) != 0u) { dct = dcn[b * H + j]; }
    } else {
      dct = dc[b * H + j];
    }
    let x = bt * GH + j;
    let i = sv_gates[x];
    let f = sv_gates[x + H];
    let g = sv_gates[x + 2u * H];
    let o = sv_gates[x + 3u * H];
    let tc = tanh_s(sv_cs[(b * (T + 1u) + t + 1u) * H + j]);
    dct += dht * o * (1.0 - tc * tc);
    dg[x] = dct * g * i * (1.0 - i);
    dg[x + H] = dct * sv_cs[(b * (T + 1u) + t) * H + j] * f * (1.0 - f);
    dg[x + 2u * H] = dct * i * (1.0 - g * g);
    dg[x + 3u * H] = dht * tc * o * (1.0 - o);
    dc[b * H + j] = dct * f;
  }
}

// dh0 = dg_0 W_hh, the recurrent grad past the first step. Grid (⌈H / WG⌉, ⌈B / 4⌉).
@compute @workgroup_size(WG)
fn lstm_dh0(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let H = p.H;
  let GH = 4u * H;
  let j = gid.x;
  if (j >= H) { return; }
  let b0 = wid.y * 4u;
  let grow = rows(b0) * p.T * GH;
  var dh = vec4f(0.0);
  for (var m = 0u; m < GH; m++) {
    let d = vec4f(d0_dg[grow.x + m], d0_dg[grow.y + m], d0_dg[grow.z + m], d0_dg[grow.w + m]);
    dh += d * d0_whh[m * H + j];
  }
  for (var l = 0u; l < 4u; l++) {
    let b = b0 + l;
    if (b >= p.B) { break; }
    d0_dh0[b * H + j] = dh[l];
  }
}
