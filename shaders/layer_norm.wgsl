// Layer norm over the last dim, x viewed as (N, C) rows, llm.c style; weight w and bias b optional (flags):
//   ln_fwd          per row: mean, then var = mean((x − mean)²) (two passes, not E[x²] − E[x]²),
//                   rstd = 1 / sqrt(var + eps), out = (x − mean) · rstd · w + b; keeps mean, rstd
//   ln_bwd_dx       per row: dnorm = dout · w, dx = rstd · (dnorm − mean(dnorm) − norm · mean(dnorm · norm))
//   ln_bwd_partial  per (column, block of rows): Σ dout · norm and Σ dout into a scratch buffer
//   ln_bwd_reduce   per column: the blocks' partials summed in order into dw, db (= or +=)
// dw, db are thus deterministic and need no float atomics. Row kernels use the layout of softmax.wgsl:
// WG / TPR rows per workgroup, TPR threads per row, a tree in workgroup memory; dead rows reach every barrier.
// Invariant: out, mean, rstd, dx, partials are written (=); dw, db are written (=) or, with
// `accumulate`, added to (+=), the only accumulation.

struct Params {
  rows: u32,
  cols: u32,
  has_w: u32,
  has_b: u32,
  rows_per_block: u32, // ln_bwd_partial / ln_bwd_reduce
  blocks: u32,         // number of row blocks: ceil(rows / rows_per_block)
  accumulate: u32,     // ln_bwd_reduce: 1 adds into dw, db
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
// ln_fwd
@group(0) @binding(1) var<storage, read> x: array<f32>;            // (N, C), in every kernel but ln_bwd_reduce
@group(0) @binding(2) var<storage, read> w: array<f32>;            // (C), when has_w
@group(0) @binding(3) var<storage, read> b: array<f32>;            // (C), when has_b
@group(0) @binding(4) var<storage, read_write> out: array<f32>;    // (N, C)
@group(0) @binding(5) var<storage, read_write> mean_out: array<f32>; // (N)
@group(0) @binding(6) var<storage, read_write> rstd_out: array<f32>; // (N)
// ln_bwd_dx (x at 1, w at 2)
@group(0) @binding(3) var<storage, read> mean_in: array<f32>;      // (N)
@group(0) @binding(4) var<storage, read> rstd_in: array<f32>;      // (N)
@group(0) @binding(5) var<storage, read> dout: array<f32>;         // (N, C)
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;     // (N, C)
// ln_bwd_partial (x at 1, mean_in at 3, rstd_in at 4, dout at 5): binding 2 unused, partial at 6
@group(0) @binding(6) var<storage, read_write> partial_out: array<f32>; // (2, blocks, C): dw rows, then db rows
// ln_bwd_reduce
@group(0) @binding(1) var<storage, read> partial_in: array<f32>;   // (2, blocks, C)
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;     // (C), when has_w
@group(0) @binding(3) var<storage, read_write> db: array<f32>;     // (C), when has_b

override WG: u32 = 256;
override TPR: u32 = 256; // row kernels: threads per row, a power of two, at most WG

var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;

struct Row { live: bool, row: u32, base: u32, lane: u32, seg: u32 }

fn row_of(wid: vec3u, nwg: vec3u, lid: u32) -> Row {
  let r = (wid.x + wid.y * nwg.x) * (WG / TPR) + lid / TPR;
  let live = r < p.rows;
  return Row(live, r, select(0u, r * p.cols, live), lid % TPR, lid - lid % TPR);
}

fn weight(c: u32) -> f32 { return select(1.0, w[c], p.has_w == 1u); }

// (Σ a, Σ b) over each row's TPR threads; every thread of the row gets the totals. Starts and ends with a
// barrier, so red_a / red_b can be reused right after.
fn row_sum2(lid: u32, r: Row, a: f32, bv: f32) -> vec2f {
  red_a[lid] = a;
  red_b[lid] = bv;
  workgroupBarrier();
  for (var h = TPR / 2u; h > 0u; h >>= 1u) {
    if (r.lane < h) {
      red_a[lid] += red_a[lid + h];
      red_b[lid] += red_b[lid + h];
    }
    workgroupBarrier();
  }
  let t = vec2f(red_a[r.seg], red_b[r.seg]);
  workgroupBarrier();
  return t;
}

@compute @workgroup_size(WG)
fn ln_fwd(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = row_of(wid, nwg, lid);
  let n = f32(p.cols);
  var s = 0.0;
  if (r.live) {
    for (var c = r.lane; c < p.cols; c += TPR) { s += x[r.base + c]; }
  }
  let mean = row_sum2(lid, r, s, 0.0).x / n;
  var v = 0.0;
  if (r.live) {
    for (var c = r.lane; c < p.cols; c += TPR) {
      let d = x[r.base + c] - mean;
      v += d * d;
    }
  }
  let rstd = 1.0 / sqrt(row_sum2(lid, r, v, 0.0).x / n + p.eps);
  if (r.live) {
    for (var c = r.lane; c < p.cols; c += TPR) {
      let y = (x[r.base + c] - mean) * rstd * weight(c);
      out[r.base + c] = select(y, y + b[c], p.has_b == 1u);
    }
    if (r.lane == 0u) {
      mean_out[r.row] = mean;
      rstd_out[r.row] = rstd;
    }
  }
}

@compute @workgroup_size(WG)
fn ln_bwd_dx(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = row_of(wid, nwg, lid);
  let mean = mean_in[r.row * u32(r.live)];
  let rstd = rstd_in[r.row * u32(r.live)];
  var sd = 0.0;  // Σ dnorm
  var sdn = 0.0; // Σ dnorm · norm
  if (r.live) {
    for (var c = r.lane; c < p.cols; c += TPR) {
      let dnorm = dout[r.base + c] * weight(c);
      sd += dnorm;
      sdn += dnorm * (x[r.base + c] - mean) * rstd;
    }
  }
  let t = row_sum2(lid, r, sd, sdn) / f32(p.cols);
  if (r.live) {
    for (var c = r.lane; c < p.cols; c += TPR) {
      let norm = (x[r.base + c] - mean) * rstd;
      dx[r.base + c] = (dout[r.base + c] * weight(c) - t.x - norm * t.y) * rstd;
    }
  }
}

// workgroups (ceil(C / WG), blocks): thread = column, so each row's reads are coalesced across the workgroup
@compute @workgroup_size(WG)
fn ln_bwd_partial(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  let blk = wid.y;
  let r0 = blk * p.rows_per_block;
  let r1 = min(p.rows, r0 + p.rows_per_block);
  var aw = 0.0;
  var ab = 0.0;
  for (var r = r0; r < r1; r++) {
    let d = dout[r * p.cols + c];
    aw += d * (x[r * p.cols + c] - mean_in[r]) * rstd_in[r];
    ab += d;
  }
  partial_out[blk * p.cols + c] = aw;
  partial_out[(p.blocks + blk) * p.cols + c] = ab;
}

@compute @workgroup_size(WG)
fn ln_bwd_reduce(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  var aw = 0.0;
  var ab = 0.0;
  for (var blk = 0u; blk < p.blocks; blk++) {
    aw += partial_in[blk * p.cols + c];
    ab += partial_in[(p.blocks + blk) * p.cols + c];
  }
  if (p.has_w == 1u) { dw[c] = select(aw, dw[c] + aw, p.accumulate == 1u); }
  if (p.has_b == 1u) { db[c] = select(ab, db[c] + ab, p.accumulate == 1u); }
}
