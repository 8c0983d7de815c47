// GRU, one layer, batch_first (torch.nn.GRU): forward and BPTT, one dispatch per timestep each way.
// Gate order r, z, n: block k of the 3H gate axis is rows k·H .. (k+1)·H of weight_ih / weight_hh.
//   r = σ(xp_r + ah_r), z = σ(xp_z + ah_z), n = tanh(xp_n + r ⊙ ah_n), h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
//   where xp = x W_ihᵀ + b_ih and ah = h_{t-1} W_hhᵀ + b_hh.
// Layouts (row-major):
//   xp    (B, T, 3H)   the input projection for every timestep (one matmul before the recurrence)
//   wt    (H, 3H)      W_hhᵀ, so that the step's threads (one per unit j) read adjacent weights
//   whh   (3H, H)      W_hh as given (backward reads it as is: adjacent j are adjacent there already)
//   hprev (B, T, H)    h_{t-1} (h0 at t = 0): the step's input and dW_hh's right operand
//   gates (B, T, 4H)   r, z, n and ah_n (the hidden side's n part, which r scales)
//   dgi, dgh (B, T, 3H) grads of xp and of ah; equal but for the n block, where dgh_n = r ⊙ dgi_n
//   carry (B, H)       dh_t ⊙ z_t, the direct path h_{t-1} → h_t, handed from backward step t to t-1
// Step threads: one per hidden unit j, 4 batch rows (the vec4 lanes) and slice of the k loop: h_{t-1}[b, k]
// is the same for a workgroup row (a broadcast) and each weight read serves 4 batch rows. The KS slices'
// partial sums meet in workgroup memory (KS = 1 on SwiftShader, where a long loop per thread is cheapest).
// Invariant: every kernel writes (=) its outputs, never accumulates (carry is overwritten by the same
// thread that reads it).

struct Params { B: u32, T: u32, H: u32, t: u32, flags: u32 }

@group(0) @binding(0) var<uniform> p: Params;

// gru_transpose
@group(0) @binding(1) var<storage, read> tr_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> tr_dst: array<f32>;
// gru_start
@group(0) @binding(1) var<storage, read> st_h0: array<f32>;
@group(0) @binding(2) var<storage, read_write> st_hprev: array<f32>;
// gru_step
@group(0) @binding(1) var<storage, read> xp: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bhh: array<f32>;
@group(0) @binding(4) var<storage, read_write> hprev: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> gates: array<f32>;
// gru_finish
@group(0) @binding(1) var<storage, read> fi_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> fi_hn: array<f32>;
// gru_step_bwd
@group(0) @binding(1) var<storage, read_write> dgi: array<f32>;
@group(0) @binding(2) var<storage, read_write> dgh: array<f32>;
@group(0) @binding(3) var<storage, read> whh: array<f32>;
@group(0) @binding(4) var<storage, read> sv_gates: array<f32>;
@group(0) @binding(5) var<storage, read> sv_hprev: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read> dhn: array<f32>;
@group(0) @binding(8) var<storage, read_write> carry: array<f32>;
// gru_dh0
@group(0) @binding(1) var<storage, read> d0_dgh: array<f32>;
@group(0) @binding(2) var<storage, read> d0_whh: array<f32>;
@group(0) @binding(3) var<storage, read> d0_carry: array<f32>;
@group(0) @binding(4) var<storage, read_write> d0_dh0: array<f32>;

override WG: u32 = 64; // gru_dh0's units per workgroup
override JT: u32 = 64; // step kernels: hidden units per workgroup
override KS: u32 = 1;  // step kernels: slices of the dot products' k loop (partial sums meet in `part`)

var<workgroup> part: array<vec4f, 3u * JT * KS>; // [slice][unit][gate] partial sums, 4 batch rows each

const HAS_H0: u32 = 1u; // gru_start flags
const HAS_DOUT: u32 = 1u; // gru_step_bwd flags
const HAS_DHN: u32 = 2u;

fn sigm(v: f32) -> f32 {
  let e = exp(-abs(v)); // split by sign so exp never overflows
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// tanh through exp overflows to NaN on some drivers for |z| > ~44; tanh(±15) is ±1 in fp32 anyway.
fn tanh_s(z: f32) -> f32 { return tanh(clamp(z, -15.0, 15.0)); }

// the 4 batch rows of a step workgroup, clamped to B - 1 for loads (rows past B are never stored)
fn rows(b0: u32) -> vec4u { return min(vec4u(b0, b0 + 1u, b0 + 2u, b0 + 3u), vec4u(p.B - 1u)); }

// wt (H, 3H) = whh (3H, H)ᵀ, one thread per element of wt
@compute @workgroup_size(256)
fn gru_transpose(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let GH = 3u * p.H;
  if (i >= GH * p.H) { return; }
  let k = i / GH;
  let m = i % GH;
  tr_dst[i] = tr_src[m * p.H + k];
}

// hprev[:, 0] = h0 (zeros when not given), one thread per (b, j)
@compute @workgroup_size(256)
fn gru_start(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.B * p.H) { return; }
  var h = 0.0;
  if ((p.flags & HAS_H0) != 0u) { h = st_h0[i]; }
  st_hprev[(i / p.H) * p.T * p.H + i % p.H] = h;
}

// timestep p.t. Workgroup (JT, KS): JT units × 4 batch rows (vec4 lanes), the k loop split into KS slices
// whose partial sums meet in workgroup memory. Grid (⌈H / JT⌉, ⌈B / 4⌉). Reads hprev row t, writes row t+1.
@compute @workgroup_size(JT, KS)
fn gru_step(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let H = p.H;
  let T = p.T;
  let t = p.t;
  let GH = 3u * H;
  let j = wid.x * JT + lid.x;
  let jc = min(j, H - 1u); // units past H load as H - 1 and store nothing: every thread reaches the barriers
  let b0 = wid.y * 4u;
  let hrow = (rows(b0) * T + t) * H;
  var ar = vec4f(0.0);
  var az = vec4f(0.0);
  var an = vec4f(0.0);
  for (var k = lid.y; k < H; k += KS) {
    let h = vec4f(hprev[hrow.x + k], hprev[hrow.y + k], hprev[hrow.z + k], hprev[hrow.w + k]);
    let w = k * GH + jc;
    ar += h * wt[w];
    az += h * wt[w + H];
    an += h * wt[w + 2u * H];
  }
  let q = (lid.y * JT + lid.x) * 3u;
  part[q] = ar;
  part[q + 1u] = az;
  part[q + 2u] = an;
  workgroupBarrier();
  // gate g of unit x, summed over the slices into slice 0's slot (which only this thread reads here)
  for (var g = lid.y; g < 3u; g += KS) {
    var s = part[lid.x * 3u + g];
    for (var z = 1u; z < KS; z++) { s += part[(z * JT + lid.x) * 3u + g]; }
    part[lid.x * 3u + g] = s;
  }
  workgroupBarrier();
  if (j >= H) { return; }
  for (var l = lid.y; l < 4u; l += KS) {
    let b = b0 + l;
    if (b >= p.B) { break; }
    let bt = b * T + t;
    let x = bt * GH + j;
    let a = lid.x * 3u;
    let r = sigm(xp[x] + part[a][l] + bhh[j]);
    let z = sigm(xp[x + H] + part[a + 1u][l] + bhh[j + H]);
    let ahn = part[a + 2u][l] + bhh[j + 2u * H];
    let n = tanh_s(xp[x + 2u * H] + r * ahn);
    let h = (1.0 - z) * n + z * hprev[bt * H + j];
    out[bt * H + j] = h;
    if (t + 1u < T) { hprev[(bt + 1u) * H + j] = h; }
    let s = bt * 4u * H + j;
    gates[s] = r;
    gates[s + H] = z;
    gates[s + 2u * H] = n;
    gates[s + 3u * H] = ahn;
  }
}

// h_n = out[:, T-1], one thread per (b, j)
@compute @workgroup_size(256)
fn gru_finish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.B * p.H) { return; }
  fi_hn[i] = fi_out[((i / p.H) * p.T + p.T - 1u) * p.H + i % p.H];
}

// backward timestep p.t (run for t = T-1 down to 0):
//   dh_t = dout_t + (t = T-1 ? dh_n : dgh_{t+1} W_hh + carry)
//   writes dgi_t, dgh_t and carry = dh_t ⊙ z_t.
// Workgroup (JT, KS) as gru_step, the m loop split into KS slices. Reads dgh row t+1, writes row t.
@compute @workgroup_size(JT, KS)
fn gru_step_bwd(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let H = p.H;
  let T = p.T;
  let t = p.t;
  let GH = 3u * H;
  let j = wid.x * JT + lid.x;
  let jc = min(j, H - 1u);
  let b0 = wid.y * 4u;
  let last = t + 1u == T;
  var dh = vec4f(0.0);
  if (!last) {
    let grow = (rows(b0) * T + t + 1u) * GH;
    for (var m = lid.y; m < GH; m += KS) {
      let d = vec4f(dgh[grow.x + m], dgh[grow.y + m], dgh[grow.z + m], dgh[grow.w + m]);
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
    if ((p.flags & HAS_DOUT) != 0u) { dht += dout[bt * H + j]; }
    if (last) {
      if ((p.flags & HAS_DHN) != 0u) { dht += dhn[b * H + j]; }
    } else {
      dht += carry[b * H + j];
    }
    let s = bt * 4u * H + j;
    let r = sv_gates[s];
    let z = sv_gates[s + H];
    let n = sv_gates[s + 2u * H];
    let ahn = sv_gates[s + 3u * H];
    let dan = dht * (1.0 - z) * (1.0 - n * n);
    let dar = dan * ahn * r * (1.0 - r);
    let daz = dht * (sv_hprev[bt * H + j] - n) * z * (1.0 - z);
    let x = bt * GH + j;
    dgi[x] = dar;
    dgi[x + H] = daz;
    dgi[x + 2u * H] = dan;
    dgh[x] = dar;
    dgh[x + H] = daz;
    dgh[x + 2u * H] = dan * r;
    carry[b * H + j] = dht * z;
  }
}

// dh0 = dgh_0 W_hh + carry, the recurrent grad past the first step. Grid (⌈H / WG⌉, ⌈B / 4⌉).
@compute @workgroup_size(WG)
fn gru_dh0(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let H = p.H;
  let GH = 3u * H;
  let j = gid.x;
  if (j >= H) { return; }
  let b0 = wid.y * 4u;
  let grow = rows(b0) * p.T * GH;
  var dh = vec4f(0.0);
  for (var m = 0u; m < GH; m++) {
    let d = vec4f(d0_dgh[grow.x + m], d0_dgh[grow.y + m], d0_dgh[grow.z + m], d0_dgh[grow.w + m]);
    dh += d * d0_whh[m * H + j];
  }
  for (var l = 0u; l < 4u; l++) {
    let b = b0 + l;
    if (b >= p.B) { break; }
    d0_dh0[b * H + j] = dh[l] + d0_carry[b * H + j];
  }
}
