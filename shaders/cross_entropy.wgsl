// Cross entropy over the last dim with softmax fused in, logits viewed as (N, C) rows, targets (N) i32:
//   ce_fwd        per row: lse = log Σ exp(x) (online max and sum), loss = lse − x[target] (0 if ignored)
//   ce_reduce     one workgroup: mean over non-ignored rows (count taken here, NaN = 0/0 if none) or sum
//   ce_bwd_scale  one workgroup: scale = dout / count (mean) or dout (sum), read from the GPU, no readback
//   ce_bwd        one thread per logit: dx = (exp(x − lse) − onehot) · scale; 0 on ignored rows
// ce_fwd uses the row layout of softmax.wgsl: WG / TPR rows per workgroup, TPR threads per row.
// Invariant: every kernel writes its outputs (=), never accumulates.

// mode: 0 mean, 1 sum, 2 none (ce_bwd: scale per row, from dout itself). ignore: ignore_index's i32 bits.
struct Params { rows: u32, cols: u32, ignore: u32, mode: u32 }

@group(0) @binding(0) var<uniform> p: Params;
// ce_fwd
@group(0) @binding(1) var<storage, read> logits: array<f32>;     // (N, C)
@group(0) @binding(2) var<storage, read> targets: array<i32>;    // (N), in every kernel
@group(0) @binding(3) var<storage, read_write> lse_out: array<f32>;  // (N)
@group(0) @binding(4) var<storage, read_write> loss_out: array<f32>; // (N)
// ce_reduce
@group(0) @binding(1) var<storage, read> loss_in: array<f32>;    // (N) from ce_fwd
@group(0) @binding(3) var<storage, read_write> total: array<f32>; // (1)
// ce_bwd_scale
@group(0) @binding(1) var<storage, read> dout: array<f32>;       // (1): grad of the reduced loss
@group(0) @binding(3) var<storage, read_write> scale_out: array<f32>; // (1)
// ce_bwd (logits at 1, target at 2)
@group(0) @binding(3) var<storage, read> lse_in: array<f32>;     // (N) from ce_fwd
@group(0) @binding(4) var<storage, read> scale_in: array<f32>;   // (1) from ce_bwd_scale, or (N) dout for 'none'
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>; // (N, C)

override WG: u32 = 256;
override TPR: u32 = 256; // ce_fwd: threads per row, a power of two, at most WG

const LOWEST: f32 = -3.4028234663852886e38; // running max before any element: finite, so LOWEST - LOWEST is 0

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;
var<workgroup> red_n: array<u32, WG>;

// a runtime NaN (a NaN constant would be a shader-creation error)
fn nan() -> f32 {
  let bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}

fn ignored(r: u32) -> bool { return targets[r] == bitcast<i32>(p.ignore); }

@compute @workgroup_size(WG)
fn ce_fwd(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * (WG / TPR) + lid / TPR;
  let live = row < p.rows;
  let base = select(0u, row * p.cols, live);
  let lane = lid % TPR;
  var m = LOWEST;
  var s = 0.0;
  if (live) {
    for (var c = lane; c < p.cols; c += TPR) {
      let v = logits[base + c];
      if (v > m) {
        s = s * exp(m - v) + 1.0;
        m = v;
      } else {
        s += exp(v - m);
      }
    }
  }
  red_m[lid] = m;
  red_s[lid] = s;
  workgroupBarrier();
  for (var h = TPR / 2u; h > 0u; h >>= 1u) {
    if (lane < h) {
      let m2 = max(red_m[lid], red_m[lid + h]);
      red_s[lid] = red_s[lid] * exp(red_m[lid] - m2) + red_s[lid + h] * exp(red_m[lid + h] - m2);
      red_m[lid] = m2;
    }
    workgroupBarrier();
  }
  if (live && lane == 0u) {
    let lse = red_m[lid] + log(red_s[lid]);
    lse_out[row] = lse;
    let t = targets[row];
    // an out-of-range target (host validation bypassed) gives NaN, never a read past the row
    let x_t = select(nan(), logits[base + u32(t)], u32(t) < p.cols);
    loss_out[row] = select(lse - x_t, 0.0, ignored(row));
  }
}

// (Σ s, Σ n) over the workgroup, in a fixed order (a tree), so the result is deterministic
fn tree_sum(lid: u32, s: f32, n: u32) -> vec2f {
  red_s[lid] = s;
  red_n[lid] = n;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) {
      red_s[lid] += red_s[lid + h];
      red_n[lid] += red_n[lid + h];
    }
    workgroupBarrier();
  }
  return vec2f(red_s[0], f32(red_n[0]));
}

// one workgroup over all N rows: thread-strided partial sums, then the tree
@compute @workgroup_size(WG)
fn ce_reduce(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  var n = 0u;
  for (var r = lid; r < p.rows; r += WG) {
    if (!ignored(r)) {
      s += loss_in[r];
      n += 1u;
    }
  }
  let t = tree_sum(lid, s, n);
  if (lid == 0u) {
    // a mean over zero rows is 0 / 0 = NaN, as in PyTorch
    total[0] = select(t.x / t.y, t.x, p.mode == 1u);
  }
}

// one workgroup: the count of non-ignored rows, and the per-logit factor of backward from it
@compute @workgroup_size(WG)
fn ce_bwd_scale(@builtin(local_invocation_index) lid: u32) {
  var n = 0u;
  for (var r = lid; r < p.rows; r += WG) {
    if (!ignored(r)) { n += 1u; }
  }
  let t = tree_sum(lid, 0.0, n);
  if (lid == 0u) {
    scale_out[0] = select(dout[0] / t.y, dout[0], p.mode == 1u);
  }
}

@compute @workgroup_size(WG)
fn ce_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.cols) { return; }
  let row = i / p.cols;
  let col = i - row * p.cols;
  let t = targets[row];
  let s = scale_in[select(0u, row, p.mode == 2u)];
  let onehot = select(0.0, 1.0, u32(t) == col);
  dlogits[i] = select((exp(logits[i] - lse_in[row]) - onehot) * s, 0.0, ignored(row));
}
