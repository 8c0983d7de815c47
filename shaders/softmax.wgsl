// Softmax over the last dim, forward and backward, rows of length C (x viewed as (N, C)):
//   forward   out = exp(x - max) / Σ exp(x - max)           (max-subtracted: exp never overflows)
//   backward  dx  = y ⊙ (dy − Σ dy⊙y)                       (from the forward's output y)
// Layout: a workgroup of WG threads holds WG / TPR rows, TPR threads per row (a power of two chosen by the
// host from C, so short rows do not leave threads idle); a thread strides its row by TPR (coalesced), then
// the row's TPR partials meet in a tree in workgroup memory. Rows past N still reach every barrier.
// Invariant: forward writes `out` (=), backward writes `dx` (=), never accumulates.

struct Params { rows: u32, cols: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;         // forward: x; backward: y (softmax output)
@group(0) @binding(2) var<storage, read> b: array<f32>;         // backward: dy (forward binds x here, unused)
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // forward: out; backward: dx

override WG: u32 = 256;
override TPR: u32 = 256; // threads per row: a power of two, at most WG

const LOWEST: f32 = -3.4028234663852886e38; // running max before any element: finite, so LOWEST - LOWEST is 0, not NaN

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

struct Row { live: bool, base: u32, lane: u32, seg: u32 }

fn row_of(wid: vec3u, nwg: vec3u, lid: u32) -> Row {
  let r = (wid.x + wid.y * nwg.x) * (WG / TPR) + lid / TPR;
  let live = r < p.rows;
  return Row(live, select(0u, r * p.cols, live), lid % TPR, lid - lid % TPR);
}

// (max, Σ exp(x - max)) of two partials, rescaled to the larger max
fn merge(m1: f32, s1: f32, m2: f32, s2: f32) -> vec2f {
  let m = max(m1, m2);
  return vec2f(m, s1 * exp(m1 - m) + s2 * exp(m2 - m));
}

// tree over each row's TPR slots of red_m / red_s; the row's result ends in its first slot (seg)
fn reduce_max_sum(lid: u32, lane: u32) {
  workgroupBarrier();
  for (var h = TPR / 2u; h > 0u; h >>= 1u) {
    if (lane < h) {
      let r = merge(red_m[lid], red_s[lid], red_m[lid + h], red_s[lid + h]);
      red_m[lid] = r.x;
      red_s[lid] = r.y;
    }
    workgroupBarrier();
  }
}

fn reduce_sum(lid: u32, lane: u32) {
  workgroupBarrier();
  for (var h = TPR / 2u; h > 0u; h >>= 1u) {
    if (lane < h) { red_s[lid] += red_s[lid + h]; }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn softmax_fwd(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = row_of(wid, nwg, lid);
  // online max and sum: one exp per element, rescaling the sum when the max grows
  var m = LOWEST;
  var s = 0.0;
  if (w.live) {
    for (var c = w.lane; c < p.cols; c += TPR) {
      let v = a[w.base + c];
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
  reduce_max_sum(lid, w.lane);
  let rm = red_m[w.seg];
  let inv = 1.0 / red_s[w.seg];
  if (w.live) {
    for (var c = w.lane; c < p.cols; c += TPR) {
      out[w.base + c] = exp(a[w.base + c] - rm) * inv;
    }
  }
}

@compute @workgroup_size(WG)
fn softmax_bwd(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = row_of(wid, nwg, lid);
  var dot = 0.0;
  if (w.live) {
    for (var c = w.lane; c < p.cols; c += TPR) { dot += a[w.base + c] * b[w.base + c]; }
  }
  red_s[lid] = dot;
  reduce_sum(lid, w.lane);
  let d = red_s[w.seg];
  if (w.live) {
    for (var c = w.lane; c < p.cols; c += TPR) {
      out[w.base + c] = a[w.base + c] * (b[w.base + c] - d);
    }
  }
}
