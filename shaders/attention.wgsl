// Fused scaled dot-product attention, flash-attention style: forward and backward side by side.
// Shapes (row-major f32, BH = B * H): q (BH, T, D); k, v (BH, S, D); out, dout, dq (BH, T, D); dk, dv (BH, S, D);
// lse, delta (BH, T). Causal mask as PyTorch's tril(ones(T, S)): query i sees key j iff j <= i (top-left aligned).
// Layout: a workgroup is WG rows of one head; each thread owns one row (a query row in the forward and in dQ, a
// key row in dK/dV) and keeps that row's vectors in registers as D4 = ceil(D / 4) vec4s. The other side streams
// through workgroup memory TILE rows at a time, zero-padded to D4 vec4s, read by every thread at the same
// address (a broadcast). Causal blocks that no row of the workgroup can see are never loaded.
// Backward variants (client/ops/attention.ts selectVariant): attention_bwd_dq / _dkdv keep a row in private arrays
// (real GPUs, D <= 128); attention_bwd_dq_reg / _dkdv_reg, at the end, the same passes with a row in named
// registers (SwiftShader, D <= 64).
// Invariants: every kernel writes its outputs (=), never +=; no atomics, so results are deterministic;
// sizes come from params, never arrayLength (pooled buffers are larger than the tensors).

struct Params { bh: u32, t: u32, s: u32, d: u32, causal: u32, scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;
// bindings 1..3 are the same in every kernel
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
// attention_fwd: 4 out, 5 lse
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
// attention_bwd_dq: 4 lse, 5 dout, 6 out, 7 dq, 8 delta (written here, read by attention_bwd_dkdv)
// attention_bwd_dkdv: 4 lse, 5 dout, 6 delta, 7 dk, 8 dv
@group(0) @binding(4) var<storage, read> lse_in: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read> out_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(8) var<storage, read_write> delta: array<f32>;
@group(0) @binding(6) var<storage, read> delta_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

override WG: u32 = 64;   // rows (threads) per workgroup
override D4: u32 = 16;   // ceil(D / 4), at most DMAX4
override TILE: u32 = 8;  // streamed rows per tile, at most TMAX; the host sizes it to 4 KiB of workgroup memory
const DMAX4: u32 = 32u;  // D <= 128: a row's registers
const TMAX: u32 = 32u;
const NEG_BIG: f32 = -3.0e38; // running max before any key: exp(NEG_BIG - m) is 0 for any real score m

var<workgroup> tile_a: array<vec4f, TILE * D4>; // k (forward, dQ) or q (dK/dV) rows of the current tile
var<workgroup> tile_b: array<vec4f, TILE * D4>; // v (forward, dQ) or dout (dK/dV) rows of the current tile
var<workgroup> row_lse: array<f32, TMAX>;       // dK/dV: lse of the tile's query rows
var<workgroup> row_delta: array<f32, TMAX>;     // dK/dV: delta of the tile's query rows

// Columns 4c..4c+3 of row r of a (rows, D) matrix at `base`, zero past D (the clamped index stays inside the
// row, so a padded lane never reads past the tensor). One function per buffer: WGSL cannot pass storage
// pointers around portably. Straight-line code: these are inlined in loops the compiler unrolls.
fn lane_ok(c: u32) -> vec4<bool> { return vec4u(4u * c) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.d); }
fn lane_idx(base: u32, r: u32, c: u32) -> vec4u { return base + r * p.d + min(vec4u(4u * c) + vec4u(0u, 1u, 2u, 3u), vec4u(p.d - 1u)); }
fn q4(base: u32, r: u32, c: u32) -> vec4f {
  let i = lane_idx(base, r, c);
  return select(vec4f(0.0), vec4f(q[i.x], q[i.y], q[i.z], q[i.w]), lane_ok(c));
}
fn k4(base: u32, r: u32, c: u32) -> vec4f {
  let i = lane_idx(base, r, c);
  return select(vec4f(0.0), vec4f(k[i.x], k[i.y], k[i.z], k[i.w]), lane_ok(c));
}
fn v4(base: u32, r: u32, c: u32) -> vec4f {
  let i = lane_idx(base, r, c);
  return select(vec4f(0.0), vec4f(v[i.x], v[i.y], v[i.z], v[i.w]), lane_ok(c));
}
fn dout4(base: u32, r: u32, c: u32) -> vec4f {
  let i = lane_idx(base, r, c);
  return select(vec4f(0.0), vec4f(dout[i.x], dout[i.y], dout[i.z], dout[i.w]), lane_ok(c));
}
fn out4(base: u32, r: u32, c: u32) -> vec4f {
  let i = lane_idx(base, r, c);
  return select(vec4f(0.0), vec4f(out_in[i.x], out_in[i.y], out_in[i.z], out_in[i.w]), lane_ok(c));
}

// heads beyond 65535 wrap into z; the test is per workgroup, so an early return keeps barriers uniform
fn head(wid: vec3u, nwg: vec3u) -> u32 { return wid.y + wid.z * nwg.y; }

// keys [0, key_end) are visible to some query row of the block starting at q0: all of them, or with the causal
// mask only j < q0 + WG
fn key_end(q0: u32) -> u32 { return select(p.s, min(p.s, q0 + WG), p.causal != 0u); }

// of the tile's n keys starting at k0, query i sees the first visible_keys (the causal mask is a prefix)
fn visible_keys(i: u32, k0: u32, n: u32) -> u32 { return select(n, min(n, max(i + 1u, k0) - k0), p.causal != 0u); }

// out = softmax(scale q kᵀ + mask) v, lse = logsumexp of each row. Grid: (ceil(T / WG), BH).
// Online softmax: per tile, rescale the running sum and output by exp(m_old − m_new) once, then add the tile.
@compute @workgroup_size(WG)
fn attention_fwd(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let bh = head(wid, nwg);
  if (bh >= p.bh) { return; }
  let q0 = wid.x * WG;
  let i = q0 + li;
  let live = i < p.t;
  let qbase = bh * p.t * p.d;
  let kbase = bh * p.s * p.d;
  var qr: array<vec4f, DMAX4>; // scale * q_i
  var o: array<vec4f, DMAX4>;  // unnormalised output
  var sc: array<f32, TMAX>;    // the tile's scores
  if (live) {
    for (var c = 0u; c < D4; c++) { qr[c] = q4(qbase, i, c) * p.scale; }
  }
  var m = NEG_BIG;
  var l = 0.0;
  let kend = key_end(q0);
  for (var k0 = 0u; k0 < kend; k0 += TILE) {
    let n = min(TILE, kend - k0);
    workgroupBarrier(); // the previous tile is consumed
    for (var x = li; x < n * D4; x += WG) {
      tile_a[x] = k4(kbase, k0 + x / D4, x % D4);
      tile_b[x] = v4(kbase, k0 + x / D4, x % D4);
    }
    workgroupBarrier();
    let nv = visible_keys(i, k0, n);
    if (live && nv > 0u) {
      var mt = m;
      for (var j = 0u; j < nv; j++) {
        var s = 0.0;
        for (var c = 0u; c < D4; c++) { s += dot(qr[c], tile_a[j * D4 + c]); }
        sc[j] = s;
        mt = max(mt, s);
      }
      let alpha = exp(m - mt);
      l *= alpha;
      for (var c = 0u; c < D4; c++) { o[c] *= alpha; }
      for (var j = 0u; j < nv; j++) {
        let pj = exp(sc[j] - mt);
        l += pj;
        for (var c = 0u; c < D4; c++) { o[c] += pj * tile_b[j * D4 + c]; }
      }
      m = mt;
    }
  }
  if (live) {
    let inv = 1.0 / l; // l >= 1: the row's largest score contributes exp(0)
    let r = qbase + i * p.d;
    for (var c = 0u; c < D4; c++) {
      let y = o[c] * inv;
      let w = r + 4u * c;
      let ok = lane_ok(c); // lane x always is: c < D4
      out[w] = y.x;
      if (ok.y) { out[w + 1u] = y.y; }
      if (ok.z) { out[w + 2u] = y.z; }
      if (ok.w) { out[w + 3u] = y.w; }
    }
    lse[bh * p.t + i] = m + log(l);
  }
}

// dQ = scale Σ_j dS_ij k_j with P_ij = exp(scale q_i·k_j − lse_i), dS_ij = P_ij (dout_i·v_j − delta_i), and
// delta_i = dout_i·out_i (= Σ_j P_ij dout_i·v_j), which this kernel also writes for attention_bwd_dkdv.
// Grid: (ceil(T / WG), BH).
@compute @workgroup_size(WG)
fn attention_bwd_dq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let bh = head(wid, nwg);
  if (bh >= p.bh) { return; }
  let q0 = wid.x * WG;
  let i = q0 + li;
  let live = i < p.t;
  let qbase = bh * p.t * p.d;
  let kbase = bh * p.s * p.d;
  var qr: array<vec4f, DMAX4>;  // scale * q_i
  var dor: array<vec4f, DMAX4>; // dout_i
  var acc: array<vec4f, DMAX4>; // Σ_j dS_ij k_j
  var lse_i = 0.0;
  var delta_i = 0.0;
  if (live) {
    for (var c = 0u; c < D4; c++) {
      qr[c] = q4(qbase, i, c) * p.scale;
      dor[c] = dout4(qbase, i, c);
      delta_i += dot(dor[c], out4(qbase, i, c));
    }
    lse_i = lse_in[bh * p.t + i];
    delta[bh * p.t + i] = delta_i;
  }
  let kend = key_end(q0);
  for (var k0 = 0u; k0 < kend; k0 += TILE) {
    let n = min(TILE, kend - k0);
    workgroupBarrier();
    for (var x = li; x < n * D4; x += WG) {
      tile_a[x] = k4(kbase, k0 + x / D4, x % D4);
      tile_b[x] = v4(kbase, k0 + x / D4, x % D4);
    }
    workgroupBarrier();
    let nv = visible_keys(i, k0, n);
    if (live) {
      for (var j = 0u; j < nv; j++) {
        var s = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < D4; c++) {
          s += dot(qr[c], tile_a[j * D4 + c]);
          dp += dot(dor[c], tile_b[j * D4 + c]);
        }
        let ds = exp(s - lse_i) * (dp - delta_i);
        for (var c = 0u; c < D4; c++) { acc[c] += ds * tile_a[j * D4 + c]; }
      }
    }
  }
  if (live) {
    let r = qbase + i * p.d;
    for (var c = 0u; c < D4; c++) {
      let y = acc[c] * p.scale;
      let w = r + 4u * c;
      let ok = lane_ok(c);
      dq[w] = y.x;
      if (ok.y) { dq[w + 1u] = y.y; }
      if (ok.z) { dq[w + 2u] = y.z; }
      if (ok.w) { dq[w + 3u] = y.w; }
    }
  }
}

// dV_j = Σ_i P_ij dout_i, dK_j = scale Σ_i dS_ij q_i, over the queries that see key j (all, or i >= j when
// causal). Reads delta from attention_bwd_dq. Grid: (ceil(S / WG), BH). Keys no query sees get zero grads.
@compute @workgroup_size(WG)
fn attention_bwd_dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let bh = head(wid, nwg);
  if (bh >= p.bh) { return; }
  let k0 = wid.x * WG;
  let j = k0 + li;
  let live = j < p.s;
  let qbase = bh * p.t * p.d;
  let kbase = bh * p.s * p.d;
  var kr: array<vec4f, DMAX4>;  // scale * k_j
  var vr: array<vec4f, DMAX4>;  // v_j
  var dka: array<vec4f, DMAX4>; // Σ_i dS_ij q_i
  var dva: array<vec4f, DMAX4>; // Σ_i P_ij dout_i
  if (live) {
    for (var c = 0u; c < D4; c++) {
      kr[c] = k4(kbase, j, c) * p.scale;
      vr[c] = v4(kbase, j, c);
    }
  }
  // query i sees key k0 (the block's first) iff i >= k0 under the causal mask
  let qstart = select(0u, k0, p.causal != 0u);
  for (var i0 = qstart; i0 < p.t; i0 += TILE) {
    let n = min(TILE, p.t - i0);
    workgroupBarrier();
    for (var x = li; x < n * D4; x += WG) {
      tile_a[x] = q4(qbase, i0 + x / D4, x % D4);
      tile_b[x] = dout4(qbase, i0 + x / D4, x % D4);
    }
    for (var x = li; x < n; x += WG) {
      row_lse[x] = lse_in[bh * p.t + i0 + x];
      row_delta[x] = delta_in[bh * p.t + i0 + x];
    }
    workgroupBarrier();
    if (live) {
      // causal: the first query of the tile that sees key j is max(j, i0)
      let first = select(0u, min(n, max(j, i0) - i0), p.causal != 0u);
      for (var ii = first; ii < n; ii++) {
        var s = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < D4; c++) {
          s += dot(kr[c], tile_a[ii * D4 + c]);
          dp += dot(vr[c], tile_b[ii * D4 + c]);
        }
        let pij = exp(s - row_lse[ii]);
        let ds = pij * (dp - row_delta[ii]);
        for (var c = 0u; c < D4; c++) {
          dva[c] += pij * tile_b[ii * D4 + c];
          dka[c] += ds * tile_a[ii * D4 + c];
        }
      }
    }
  }
  if (live) {
    let r = kbase + j * p.d;
    for (var c = 0u; c < D4; c++) {
      let yk = dka[c] * p.scale;
      let yv = dva[c];
      let w = r + 4u * c;
      let ok = lane_ok(c);
      dk[w] = yk.x;
      dv[w] = yv.x;
      if (ok.y) { dk[w + 1u] = yk.y; dv[w + 1u] = yv.y; }
      if (ok.z) { dk[w + 2u] = yk.z; dv[w + 2u] = yv.z; }
      if (ok.w) { dk[w + 3u] = yk.w; dv[w + 3u] = yv.w; }
    }
  }
}

// ---- backward with rows in registers, for SwiftShader ----
// SwiftShader runs invocations as SIMD lanes on the CPU, and a private array indexed by a loop counter is memory
// there, gathered and scattered lane by lane: the array kernels above spend most of their time on qr[c], acc[c]
// (at D = 32 these take about half the time). Here a row is up to four mat4x4f chunks of 16 columns (D <= 64),
// each a named value; a chunk past D4 is skipped by a test on the override constant, which the compiler folds.
// The host pads D4 to a multiple of 4 for these kernels (the loads zero the padding columns, the stores skip
// them), so a tile row is whole chunks. Same tiles, causal limits and order over keys and queries as the array
// kernels.

const ZERO16 = mat4x4f();
fn dot16(a: mat4x4f, b: mat4x4f) -> f32 { return dot(a[0], b[0]) + dot(a[1], b[1]) + dot(a[2], b[2]) + dot(a[3], b[3]); }
// chunk m (columns 16m..16m+15) of row r of a (rows, D) matrix at `base`, zero past D
fn q16(base: u32, r: u32, m: u32) -> mat4x4f { let c = 4u * m; return mat4x4f(q4(base, r, c), q4(base, r, c + 1u), q4(base, r, c + 2u), q4(base, r, c + 3u)); }
fn k16(base: u32, r: u32, m: u32) -> mat4x4f { let c = 4u * m; return mat4x4f(k4(base, r, c), k4(base, r, c + 1u), k4(base, r, c + 2u), k4(base, r, c + 3u)); }
fn v16(base: u32, r: u32, m: u32) -> mat4x4f { let c = 4u * m; return mat4x4f(v4(base, r, c), v4(base, r, c + 1u), v4(base, r, c + 2u), v4(base, r, c + 3u)); }
fn dout16(base: u32, r: u32, m: u32) -> mat4x4f { let c = 4u * m; return mat4x4f(dout4(base, r, c), dout4(base, r, c + 1u), dout4(base, r, c + 2u), dout4(base, r, c + 3u)); }
fn out16(base: u32, r: u32, m: u32) -> mat4x4f { let c = 4u * m; return mat4x4f(out4(base, r, c), out4(base, r, c + 1u), out4(base, r, c + 2u), out4(base, r, c + 3u)); }
// the chunk at vec4 offset o of a tile
fn ta16(o: u32) -> mat4x4f { return mat4x4f(tile_a[o], tile_a[o + 1u], tile_a[o + 2u], tile_a[o + 3u]); }
fn tb16(o: u32) -> mat4x4f { return mat4x4f(tile_b[o], tile_b[o + 1u], tile_b[o + 2u], tile_b[o + 3u]); }
// store chunk m of a row starting at element w0, columns < D only
fn dq16(w0: u32, m: u32, y: mat4x4f) {
  for (var cc = 0u; cc < 4u; cc++) {
    let c = 4u * m + cc;
    let ok = lane_ok(c);
    let w = w0 + 4u * c;
    if (ok.x) { dq[w] = y[cc].x; }
    if (ok.y) { dq[w + 1u] = y[cc].y; }
    if (ok.z) { dq[w + 2u] = y[cc].z; }
    if (ok.w) { dq[w + 3u] = y[cc].w; }
  }
}
fn dk16(w0: u32, m: u32, y: mat4x4f) {
  for (var cc = 0u; cc < 4u; cc++) {
    let c = 4u * m + cc;
    let ok = lane_ok(c);
    let w = w0 + 4u * c;
    if (ok.x) { dk[w] = y[cc].x; }
    if (ok.y) { dk[w + 1u] = y[cc].y; }
    if (ok.z) { dk[w + 2u] = y[cc].z; }
    if (ok.w) { dk[w + 3u] = y[cc].w; }
  }
}
fn dv16(w0: u32, m: u32, y: mat4x4f) {
  for (var cc = 0u; cc < 4u; cc++) {
    let c = 4u * m + cc;
    let ok = lane_ok(c);
    let w = w0 + 4u * c;
    if (ok.x) { dv[w] = y[cc].x; }
    if (ok.y) { dv[w + 1u] = y[cc].y; }
    if (ok.z) { dv[w + 2u] = y[cc].z; }
    if (ok.w) { dv[w + 3u] = y[cc].w; }
  }
}

// attention_bwd_dq with registers. Grid: (ceil(T / WG), BH).
@compute @workgroup_size(WG)
fn attention_bwd_dq_reg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let bh = head(wid, nwg);
  if (bh >= p.bh) { return; }
  let q0 = wid.x * WG;
  let i = q0 + li;
  let live = i < p.t;
  let ir = min(i, p.t - 1u); // a row past T reads the last row, sees no key and stores nothing
  let qbase = bh * p.t * p.d;
  let kbase = bh * p.s * p.d;
  // scale * q_i and dout_i, chunk by chunk; delta_i = dout_i · out_i
  let q_0 = q16(qbase, ir, 0u) * p.scale;
  let g_0 = dout16(qbase, ir, 0u);
  var delta_i = dot16(g_0, out16(qbase, ir, 0u));
  var q_1 = ZERO16; var g_1 = ZERO16; var q_2 = ZERO16; var g_2 = ZERO16; var q_3 = ZERO16; var g_3 = ZERO16;
  if (D4 > 4u) { q_1 = q16(qbase, ir, 1u) * p.scale; g_1 = dout16(qbase, ir, 1u); delta_i += dot16(g_1, out16(qbase, ir, 1u)); }
  if (D4 > 8u) { q_2 = q16(qbase, ir, 2u) * p.scale; g_2 = dout16(qbase, ir, 2u); delta_i += dot16(g_2, out16(qbase, ir, 2u)); }
  if (D4 > 12u) { q_3 = q16(qbase, ir, 3u) * p.scale; g_3 = dout16(qbase, ir, 3u); delta_i += dot16(g_3, out16(qbase, ir, 3u)); }
  let lse_i = lse_in[bh * p.t + ir];
  if (live) { delta[bh * p.t + i] = delta_i; }
  var a_0 = ZERO16; var a_1 = ZERO16; var a_2 = ZERO16; var a_3 = ZERO16; // Σ_j dS_ij k_j
  let kend = key_end(q0);
  for (var k0 = 0u; k0 < kend; k0 += TILE) {
    let n = min(TILE, kend - k0);
    workgroupBarrier();
    for (var x = li; x < n * D4; x += WG) {
      tile_a[x] = k4(kbase, k0 + x / D4, x % D4);
      tile_b[x] = v4(kbase, k0 + x / D4, x % D4);
    }
    workgroupBarrier();
    let nv = select(0u, visible_keys(i, k0, n), live);
    for (var j = 0u; j < nv; j++) {
      let o = j * D4;
      let k_0 = ta16(o);
      var s = dot16(q_0, k_0);
      var dp = dot16(g_0, tb16(o));
      var k_1 = ZERO16; var k_2 = ZERO16; var k_3 = ZERO16;
      if (D4 > 4u) { k_1 = ta16(o + 4u); s += dot16(q_1, k_1); dp += dot16(g_1, tb16(o + 4u)); }
      if (D4 > 8u) { k_2 = ta16(o + 8u); s += dot16(q_2, k_2); dp += dot16(g_2, tb16(o + 8u)); }
      if (D4 > 12u) { k_3 = ta16(o + 12u); s += dot16(q_3, k_3); dp += dot16(g_3, tb16(o + 12u)); }
      let ds = exp(s - lse_i) * (dp - delta_i);
      a_0 += ds * k_0;
      if (D4 > 4u) { a_1 += ds * k_1; }
      if (D4 > 8u) { a_2 += ds * k_2; }
      if (D4 > 12u) { a_3 += ds * k_3; }
    }
  }
  if (live) {
    let w0 = qbase + i * p.d;
    dq16(w0, 0u, a_0 * p.scale);
    if (D4 > 4u) { dq16(w0, 1u, a_1 * p.scale); }
    if (D4 > 8u) { dq16(w0, 2u, a_2 * p.scale); }
    if (D4 > 12u) { dq16(w0, 3u, a_3 * p.scale); }
  }
}

// attention_bwd_dkdv with registers. Grid: (ceil(S / WG), BH).
@compute @workgroup_size(WG)
fn attention_bwd_dkdv_reg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let bh = head(wid, nwg);
  if (bh >= p.bh) { return; }
  let k0 = wid.x * WG;
  let j = k0 + li;
  let live = j < p.s;
  let jr = min(j, p.s - 1u); // a row past S reads the last key row, sees no query and stores nothing
  let qbase = bh * p.t * p.d;
  let kbase = bh * p.s * p.d;
  let k_0 = k16(kbase, jr, 0u) * p.scale;
  let v_0 = v16(kbase, jr, 0u);
  var k_1 = ZERO16; var v_1 = ZERO16; var k_2 = ZERO16; var v_2 = ZERO16; var k_3 = ZERO16; var v_3 = ZERO16;
  if (D4 > 4u) { k_1 = k16(kbase, jr, 1u) * p.scale; v_1 = v16(kbase, jr, 1u); }
  if (D4 > 8u) { k_2 = k16(kbase, jr, 2u) * p.scale; v_2 = v16(kbase, jr, 2u); }
  if (D4 > 12u) { k_3 = k16(kbase, jr, 3u) * p.scale; v_3 = v16(kbase, jr, 3u); }
  var a_0 = ZERO16; var a_1 = ZERO16; var a_2 = ZERO16; var a_3 = ZERO16; // Σ_i dS_ij q_i
  var b_0 = ZERO16; var b_1 = ZERO16; var b_2 = ZERO16; var b_3 = ZERO16; // Σ_i P_ij dout_i
  let qstart = select(0u, k0, p.causal != 0u);
  for (var i0 = qstart; i0 < p.t; i0 += TILE) {
    let n = min(TILE, p.t - i0);
    workgroupBarrier();
    for (var x = li; x < n * D4; x += WG) {
      tile_a[x] = q4(qbase, i0 + x / D4, x % D4);
      tile_b[x] = dout4(qbase, i0 + x / D4, x % D4);
    }
    for (var x = li; x < n; x += WG) {
      row_lse[x] = lse_in[bh * p.t + i0 + x];
      row_delta[x] = delta_in[bh * p.t + i0 + x];
    }
    workgroupBarrier();
    let first = select(n, select(0u, min(n, max(j, i0) - i0), p.causal != 0u), live);
    for (var ii = first; ii < n; ii++) {
      let o = ii * D4;
      let q_0 = ta16(o);
      let g_0 = tb16(o);
      var s = dot16(k_0, q_0);
      var dp = dot16(v_0, g_0);
      var q_1 = ZERO16; var g_1 = ZERO16; var q_2 = ZERO16; var g_2 = ZERO16; var q_3 = ZERO16; var g_3 = ZERO16;
      if (D4 > 4u) { q_1 = ta16(o + 4u); g_1 = tb16(o + 4u); s += dot16(k_1, q_1); dp += dot16(v_1, g_1); }
      if (D4 > 8u) { q_2 = ta16(o + 8u); g_2 = tb16(o + 8u); s += dot16(k_2, q_2); dp += dot16(v_2, g_2); }
      if (D4 > 12u) { q_3 = ta16(o + 12u); g_3 = tb16(o + 12u); s += dot16(k_3, q_3); dp += dot16(v_3, g_3); }
      let pij = exp(s - row_lse[ii]);
      let ds = pij * (dp - row_delta[ii]);
      a_0 += ds * q_0; b_0 += pij * g_0;
      if (D4 > 4u) { a_1 += ds * q_1; b_1 += pij * g_1; }
      if (D4 > 8u) { a_2 += ds * q_2; b_2 += pij * g_2; }
      if (D4 > 12u) { a_3 += ds * q_3; b_3 += pij * g_3; }
    }
  }
  if (live) {
    let w0 = kbase + j * p.d;
    dk16(w0, 0u, a_0 * p.scale); dv16(w0, 0u, b_0);
    if (D4 > 4u) { dk16(w0, 1u, a_1 * p.scale); dv16(w0, 1u, b_1); }
    if (D4 > 8u) { dk16(w0, 2u, a_2 * p.scale); dv16(w0, 2u, b_2); }
    if (D4 > 12u) { dk16(w0, 3u, a_3 * p.scale); dv16(w0, 3u, b_3); }
  }
}
