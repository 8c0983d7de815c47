// Matmul: out (Z, M, N) = Σ_{zl} op(a) (M, K) @ op(b) (K, N) (+ bias (N,)) (+ out's previous contents).
// op() transposes are folded into element strides, so a@b, a@bᵀ, aᵀ@b and aᵀ@bᵀ (all the backward needs)
// cost no transpose pass. Batch z of the output sums `zl` consecutive batches of a and b (zl = 1 normally;
// zl = B when the grad of a shared 2-D operand sums over the batch); a 2-D operand has batch stride 0.
// Split-K: workgroup z = split * Z + batch; split s covers k in [s*kc, s*kc + kc) and writes its partial
// product to out + (s*Z + batch)*M*N, and sum_rows adds the splits up (with the bias, and out when accumulating).
// Invariant: every kernel writes out = acc (+ bias) when p.accumulate == 0, out += acc otherwise;
// elements outside (M, N) are never written, and any M, N, K works (edges are clamped or zero-padded).
//
// Variants (client/ops/matmul.ts selects by shape and adapter):
//   matmul_reg   no workgroup memory: each invocation keeps an 8x16 block of out in registers and reads a and
//                b straight from storage. Suits SwiftShader, which runs invocations as SIMD lanes on CPU cores:
//                barriers are costly there and the CPU caches already share loads between neighbours.
//   matmul_tiled workgroup-memory tiles (BM x BK of a, BK x BN of b) with a TM x TN register block per
//                invocation: the classic GPU kernel, for real GPUs.
//   sum_rows     out[n] = Σ_r x[r, n] (+ bias[n % bias_n]): bias gradients, and the split-K reduction.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  zl: u32,          // batches summed into each output batch
  zn: u32,          // output batches Z (workgroup z = split * Z + batch)
  kc: u32,          // K per split (K when not split)
  a_z: u32,         // batch stride of a in elements (0: shared)
  b_z: u32,
  a_m: u32,         // element strides of op(a) (M, K): (K, 1) plain, (1, M) transposed
  a_k: u32,
  b_k: u32,         // element strides of op(b) (K, N): (N, 1) plain, (1, K) transposed
  b_n: u32,
  has_bias: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;  // bound to a when there is no bias (never read then)
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// the one place results are stored: = or += and the bias, for (m, n) inside the output only
fn store(o: u32, m: u32, n: u32, v: f32) {
  if (m >= p.M || n >= p.N) { return; }
  var r = v;
  if (p.has_bias != 0u) { r += bias[n]; }
  let i = o + m * p.N + n;
  if (p.accumulate != 0u) { r += out[i]; }
  out[i] = r;
}

// ---------------------------------------------------------------------------------------------------------
// matmul_reg: workgroup (RX, RY) invocations, each computing an 8 x 16 block of out: rows m0..m0+7 as
// 8 rows of 4 vec4 accumulators (c<row><col group>). Per 4-deep step of K it reads 32 elements of op(a) and
// 64 of op(b) for 512 multiply-adds. On SwiftShader the register block is what counts: 4x4 blocks reach
// about 1 GFLOPS, 8x8 1.6, 8x16 2.4 at 512^3 (2 cores), and vec4 loads gain nothing over scalar ones, so
// loads stay scalar through the strides and every layout and size takes the same path. Rows and columns
// past the edge are clamped to the last one (loads stay in bounds, no branches in the loop) and not stored;
// K runs in steps of 4, and the last step zeroes the op(a) elements past the end of the split's K range.
override RX: u32 = 8;
override RY: u32 = 8;

// 4 elements of op(a): row offset r, k offsets o
fn a4(r: u32, o: vec4u) -> vec4f { return vec4f(a[r + o.x], a[r + o.y], a[r + o.z], a[r + o.w]); }
// 4 elements of op(b): k offset s, column offsets q
fn b4(s: u32, q: vec4u) -> vec4f { return vec4f(b[s + q.x], b[s + q.y], b[s + q.z], b[s + q.w]); }
// op(b) rows k..k+3 (offsets s) x 4 columns (offsets q), as a matrix whose column kk is row k+kk of op(b)
fn bmat(s: vec4u, q: vec4u) -> mat4x4f { return mat4x4f(b4(s.x, q), b4(s.y, q), b4(s.z, q), b4(s.w, q)); }

@compute @workgroup_size(RX, RY)
fn matmul_reg(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let n0 = (wid.x * RX + lid.x) * 16u;
  let m0 = (wid.y * RY + lid.y) * 8u;
  if (m0 >= p.M || n0 >= p.N) { return; }
  let mx = vec4u(p.M - 1u);
  let nx = vec4u(p.N - 1u);
  let step = vec4u(0u, 1u, 2u, 3u);
  // clamped row offsets of op(a), column offsets of op(b)
  let ra = min(vec4u(m0) + step, mx) * p.a_m;
  let rb = min(vec4u(m0 + 4u) + step, mx) * p.a_m;
  let q0 = min(vec4u(n0) + step, nx) * p.b_n;
  let q1 = min(vec4u(n0 + 4u) + step, nx) * p.b_n;
  let q2 = min(vec4u(n0 + 8u) + step, nx) * p.b_n;
  let q3 = min(vec4u(n0 + 12u) + step, nx) * p.b_n;
  var c00 = vec4f(0.0); var c01 = vec4f(0.0); var c02 = vec4f(0.0); var c03 = vec4f(0.0);
  var c10 = vec4f(0.0); var c11 = vec4f(0.0); var c12 = vec4f(0.0); var c13 = vec4f(0.0);
  var c20 = vec4f(0.0); var c21 = vec4f(0.0); var c22 = vec4f(0.0); var c23 = vec4f(0.0);
  var c30 = vec4f(0.0); var c31 = vec4f(0.0); var c32 = vec4f(0.0); var c33 = vec4f(0.0);
  var c40 = vec4f(0.0); var c41 = vec4f(0.0); var c42 = vec4f(0.0); var c43 = vec4f(0.0);
  var c50 = vec4f(0.0); var c51 = vec4f(0.0); var c52 = vec4f(0.0); var c53 = vec4f(0.0);
  var c60 = vec4f(0.0); var c61 = vec4f(0.0); var c62 = vec4f(0.0); var c63 = vec4f(0.0);
  var c70 = vec4f(0.0); var c71 = vec4f(0.0); var c72 = vec4f(0.0); var c73 = vec4f(0.0);
  let kb = (wid.z / p.zn) * p.kc;
  let ke = min(p.K, kb + p.kc);
  let k4 = ke - ((ke - kb) & 3u);
  for (var zz = 0u; zz < p.zl; zz++) {
    let z = (wid.z % p.zn) * p.zl + zz;
    let za = z * p.a_z;
    let zb = z * p.b_z;
    for (var k = kb; k < ke; k += 4u) {
      // the K tail (k + kk >= ke) reads element ke-1 and multiplies it by 0
      let kk = min(vec4u(k) + step, vec4u(ke - 1u));
      let o = za + kk * p.a_k;
      let s = zb + kk * p.b_k;
      let B0 = bmat(s, q0);
      let B1 = bmat(s, q1);
      let B2 = bmat(s, q2);
      let B3 = bmat(s, q3);
      var x0 = a4(ra.x, o); var x1 = a4(ra.y, o); var x2 = a4(ra.z, o); var x3 = a4(ra.w, o);
      var x4 = a4(rb.x, o); var x5 = a4(rb.y, o); var x6 = a4(rb.z, o); var x7 = a4(rb.w, o);
      if (k >= k4) {
        let keep = vec4f(vec4u(k) + step < vec4u(ke));
        x0 *= keep; x1 *= keep; x2 *= keep; x3 *= keep; x4 *= keep; x5 *= keep; x6 *= keep; x7 *= keep;
      }
      c00 += B0 * x0; c01 += B1 * x0; c02 += B2 * x0; c03 += B3 * x0;
      c10 += B0 * x1; c11 += B1 * x1; c12 += B2 * x1; c13 += B3 * x1;
      c20 += B0 * x2; c21 += B1 * x2; c22 += B2 * x2; c23 += B3 * x2;
      c30 += B0 * x3; c31 += B1 * x3; c32 += B2 * x3; c33 += B3 * x3;
      c40 += B0 * x4; c41 += B1 * x4; c42 += B2 * x4; c43 += B3 * x4;
      c50 += B0 * x5; c51 += B1 * x5; c52 += B2 * x5; c53 += B3 * x5;
      c60 += B0 * x6; c61 += B1 * x6; c62 += B2 * x6; c63 += B3 * x6;
      c70 += B0 * x7; c71 += B1 * x7; c72 += B2 * x7; c73 += B3 * x7;
    }
  }
  let o = wid.z * p.M * p.N;
  store4(o, m0, n0, c00, c01, c02, c03);
  store4(o, m0 + 1u, n0, c10, c11, c12, c13);
  store4(o, m0 + 2u, n0, c20, c21, c22, c23);
  store4(o, m0 + 3u, n0, c30, c31, c32, c33);
  store4(o, m0 + 4u, n0, c40, c41, c42, c43);
  store4(o, m0 + 5u, n0, c50, c51, c52, c53);
  store4(o, m0 + 6u, n0, c60, c61, c62, c63);
  store4(o, m0 + 7u, n0, c70, c71, c72, c73);
}

// 16 consecutive results of row m from column n0
fn store4(o: u32, m: u32, n0: u32, v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f) {
  for (var j = 0u; j < 4u; j++) {
    store(o, m, n0 + j, v0[j]);
    store(o, m, n0 + 4u + j, v1[j]);
    store(o, m, n0 + 8u + j, v2[j]);
    store(o, m, n0 + 12u + j, v3[j]);
  }
}

// ---------------------------------------------------------------------------------------------------------
// matmul_tiled: workgroup (TX, TY) invocations computing a BM x BN tile, BM = TY*TM, BN = TX*TN. Each step
// stages a BK-deep slab of op(a) and op(b) in workgroup memory (zero past the edges, so the K tail needs no
// special case), then every invocation accumulates its TM x TN block: rows ty + i*TY, cols tx + j*TX
// (strided, so neighbouring invocations read neighbouring words of the slab and store coalesced).
override TX: u32 = 16;
override TY: u32 = 16;
override TM: u32 = 4;   // ≤ 8
override TN: u32 = 4;   // ≤ 8
override BK: u32 = 16;
const MAXR: u32 = 8;

var<workgroup> As: array<f32, BK * TY * TM>;  // [kk][mm]
var<workgroup> Bs: array<f32, BK * TX * TN>;  // [kk][nn]

@compute @workgroup_size(TX, TY)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let BM = TY * TM;
  let BN = TX * TN;
  let t = lid.y * TX + lid.x;
  let nt = TX * TY;
  let m_base = wid.y * BM;
  let n_base = wid.x * BN;
  var acc: array<array<f32, MAXR>, MAXR>;
  for (var i = 0u; i < TM; i++) { for (var j = 0u; j < TN; j++) { acc[i][j] = 0.0; } }
  var ar: array<f32, MAXR>;
  var br: array<f32, MAXR>;
  // stage along the contiguous dim of each operand, so neighbouring invocations read neighbouring words
  let a_kfast = p.a_k == 1u;
  let b_nfast = p.b_n == 1u;
  let kb = (wid.z / p.zn) * p.kc;
  let ke = min(p.K, kb + p.kc);
  for (var zz = 0u; zz < p.zl; zz++) {
    let z = (wid.z % p.zn) * p.zl + zz;
    let ao = z * p.a_z;
    let bo = z * p.b_z;
    for (var k0 = kb; k0 < ke; k0 += BK) {
      for (var e = t; e < BK * BM; e += nt) {
        var kk: u32; var mm: u32;
        if (a_kfast) { kk = e % BK; mm = e / BK; } else { mm = e % BM; kk = e / BM; }
        let m = m_base + mm;
        let k = k0 + kk;
        var v = 0.0;
        if (m < p.M && k < ke) { v = a[ao + m * p.a_m + k * p.a_k]; }
        As[kk * BM + mm] = v;
      }
      for (var e = t; e < BK * BN; e += nt) {
        var kk: u32; var nn: u32;
        if (b_nfast) { nn = e % BN; kk = e / BN; } else { kk = e % BK; nn = e / BK; }
        let n = n_base + nn;
        let k = k0 + kk;
        var v = 0.0;
        if (n < p.N && k < ke) { v = b[bo + k * p.b_k + n * p.b_n]; }
        Bs[kk * BN + nn] = v;
      }
      workgroupBarrier();
      for (var kk = 0u; kk < BK; kk++) {
        for (var i = 0u; i < TM; i++) { ar[i] = As[kk * BM + lid.y + i * TY]; }
        for (var j = 0u; j < TN; j++) { br[j] = Bs[kk * BN + lid.x + j * TX]; }
        for (var i = 0u; i < TM; i++) {
          for (var j = 0u; j < TN; j++) { acc[i][j] = fma(ar[i], br[j], acc[i][j]); }
        }
      }
      workgroupBarrier();
    }
  }
  let o = wid.z * p.M * p.N;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { store(o, m_base + lid.y + i * TY, n_base + lid.x + j * TX, acc[i][j]); }
  }
}

// ---------------------------------------------------------------------------------------------------------
// sum_rows: out[n] (+)= Σ_r x[r, n] (+ bias[n % bias_n]) over a (rows, cols) row-major matrix; one invocation
// per column (a 2-D grid past 65535 workgroups), neighbouring invocations read neighbouring words of each row.
struct SumParams {
  rows: u32,
  cols: u32,
  accumulate: u32,
  bias_n: u32,      // 0: no bias
}
@group(0) @binding(0) var<uniform> q: SumParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> sum_bias: array<f32>;  // bound to x when there is no bias
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;

override SW: u32 = 64;

@compute @workgroup_size(SW)
fn sum_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = gid.x + gid.y * nwg.x * SW;
  if (n >= q.cols) { return; }
  var s0 = 0.0;
  var s1 = 0.0;
  var r = 0u;
  for (; r + 2u <= q.rows; r += 2u) {
    s0 += x[r * q.cols + n];
    s1 += x[(r + 1u) * q.cols + n];
  }
  if (r < q.rows) { s0 += x[r * q.cols + n]; }
  var s = s0 + s1;
  if (q.bias_n != 0u) { s += sum_bias[n % q.bias_n]; }
  if (q.accumulate != 0u) { s += sums[n]; }
  sums[n] = s;
}
