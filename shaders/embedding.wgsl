// Embedding lookup, forward and backward. Shapes: idx (N) i32, weight (V, C), out / dout (N, C), dweight (V, C).
// Backward is a scatter-add done without float atomics and bit-for-bit deterministic: the positions are
// sorted by index with a stable LSD radix sort (8 bits per pass: tile histograms, one scan, stable scatter),
// each row's range in the sorted list is found, and one thread per (used row, 4 channels) sums its row's
// upstream grads in position order (long rows with help: see emb_chunk_sums). Integer atomics only count
// (in workgroup memory), so no result depends on timing.
// Invariants: forward writes `out` (=). Backward leaves every element of dweight written (=): rows never used
// get exactly 0 (by the host's zero fill or by embedding_bwd), the padding row gets 0; with `accumulate` it
// adds (+=) to used rows only and leaves the rest.
// Indices outside [0, V) are a host-side error (validate them where batches are made); here they read as
// zero rows (forward) and are dropped (backward), never touching memory outside the tensors.

struct Params {
  n: u32,       // elements of the thread's work (see each kernel)
  C: u32,
  V: u32,
  shift: u32,   // radix pass: the digit is (key >> shift) & 255
  tiles: u32,   // radix pass: tiles of TILE positions
  first: u32,   // radix pass: 1 on the first pass (keys come from idx, values are the positions themselves)
  pad: u32,     // backward: the padding row, or 0xffffffff for none
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// TILE positions per workgroup in the radix passes; the digit histogram has 256 bins
override WG: u32 = 256;
const TILE: u32 = 256u;
const BINS: u32 = 256u;

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

// ---------------------------------------------------------------------------------------------------------
// forward: out[n, c] = weight[idx[n], c]; one thread per output element. bindings: idx, weight, out

@group(0) @binding(1) var<storage, read> f_idx: array<i32>;
@group(0) @binding(2) var<storage, read> f_weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_out: array<f32>;

@compute @workgroup_size(WG)
fn embedding_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let row = i / p.C;
  let c = i - row * p.C;
  let k = f_idx[row];
  // an out-of-range index (a host-side error) reads as a zero row rather than another row or stray memory
  var w = 0.0;
  if (k >= 0 && u32(k) < p.V) { w = f_weight[u32(k) * p.C + c]; }
  f_out[i] = w;
}

// ---------------------------------------------------------------------------------------------------------
// radix pass, step 1: per tile, how many of its keys have each digit. hist is digit-major, hist[d * tiles + t],
// so an exclusive scan of it gives each (digit, tile) its first slot in the stably sorted output.
// bindings: keys_in (i32 idx on the first pass: a negative or too large index becomes key V), hist

@group(0) @binding(1) var<storage, read> h_keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> h_hist: array<u32>;

var<workgroup> bins: array<atomic<u32>, BINS>;

fn key_of(raw: u32) -> u32 { return min(raw, p.V); } // u32 of a negative i32 is ≥ 2^31 > V: also V

@compute @workgroup_size(TILE)
fn emb_sort_hist(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = wid.x + wid.y * nwg.x;
  atomicStore(&bins[lid], 0u);
  workgroupBarrier();
  let i = t * TILE + lid;
  if (t < p.tiles && i < p.n) {
    atomicAdd(&bins[(key_of(h_keys[i]) >> p.shift) & 255u], 1u);
  }
  workgroupBarrier();
  if (t < p.tiles) { h_hist[lid * p.tiles + t] = atomicLoad(&bins[lid]); }
}

// radix pass, step 2: exclusive scan of hist (p.n = 256 · tiles entries) in place, by one workgroup:
// each thread sums a contiguous chunk, the chunk sums are scanned in workgroup memory, then each chunk is
// rewritten with its running prefix. bindings: hist

@group(0) @binding(1) var<storage, read_write> s_hist: array<u32>;

var<workgroup> partial: array<u32, BINS>;

@compute @workgroup_size(BINS)
fn emb_sort_scan(@builtin(local_invocation_index) lid: u32) {
  let per = (p.n + BINS - 1u) / BINS;
  let lo = min(lid * per, p.n);
  let hi = min(lo + per, p.n);
  var sum = 0u;
  for (var j = lo; j < hi; j++) { sum += s_hist[j]; }
  partial[lid] = sum;
  workgroupBarrier();
  // Hillis-Steele inclusive scan of the 256 chunk sums
  for (var d = 1u; d < BINS; d <<= 1u) {
    var add = 0u;
    if (lid >= d) { add = partial[lid - d]; }
    workgroupBarrier();
    partial[lid] += add;
    workgroupBarrier();
  }
  var run = partial[lid] - sum; // exclusive prefix of this chunk
  for (var j = lo; j < hi; j++) {
    let c = s_hist[j];
    s_hist[j] = run;
    run += c;
  }
}

// radix pass, step 3: stable scatter. A key's slot is its (digit, tile) start plus the number of earlier
// keys of the tile with the same digit, so equal digits keep their order and, after all passes, equal keys
// are in position order. bindings: keys_in, vals_in (unused on the first pass), hist (scanned), keys_out, vals_out

@group(0) @binding(1) var<storage, read> x_keys: array<u32>;
@group(0) @binding(2) var<storage, read> x_vals: array<u32>;
@group(0) @binding(3) var<storage, read> x_start: array<u32>;
@group(0) @binding(4) var<storage, read_write> x_keys_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> x_vals_out: array<u32>;

// each thread's digit (256 for none), four to a vector: thread l's is digits[l / 4][l % 4]. Ranks are counted
// by comparing vectors of digits, with no atomics: SwiftShader (a CPU) runs workgroup atomics slowly.
var<workgroup> digits: array<vec4u, TILE / 4u>;

@compute @workgroup_size(TILE)
fn emb_sort_scatter(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = wid.x + wid.y * nwg.x;
  let i = t * TILE + lid;
  let live = t < p.tiles && i < p.n;
  var key = 0u;
  var d = BINS;
  if (live) {
    key = key_of(x_keys[i]);
    d = (key >> p.shift) & 255u;
  }
  digits[lid / 4u][lid % 4u] = d;
  workgroupBarrier();
  if (!live) { return; }
  // rank among the tile's earlier threads with the same digit: whole vectors before this thread's, then the
  // lanes below it in its own
  var same = vec4u(0u);
  for (var w = 0u; w < lid / 4u; w++) { same += select(vec4u(0u), vec4u(1u), digits[w] == vec4u(d)); }
  let own = select(vec4u(0u), vec4u(1u), digits[lid / 4u] == vec4u(d)) * vec4u(vec4<bool>(lid % 4u > 0u, lid % 4u > 1u, lid % 4u > 2u, false));
  same += own;
  let rank = same.x + same.y + same.z + same.w;
  let slot = x_start[d * p.tiles + t] + rank;
  x_keys_out[slot] = key;
  x_vals_out[slot] = select(x_vals[i], i, p.first == 1u);
}

// ---------------------------------------------------------------------------------------------------------
// each row's range [start, end) in the sorted keys; range is (V, 2), zero-filled first, so rows never used
// stay empty. Exactly one thread writes each start and each end. bindings: sorted keys, range

@group(0) @binding(1) var<storage, read> b_keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> b_range: array<u32>;

@compute @workgroup_size(WG)
fn emb_row_ranges(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let k = b_keys[i];
  if (k >= p.V) { return; } // dropped: out-of-range indices sort last, as key V
  if (i == 0u || b_keys[i - 1u] != k) { b_range[2u * k] = i; }
  if (i == p.n - 1u || b_keys[i + 1u] != k) { b_range[2u * k + 1u] = i + 1u; }
}

// ---------------------------------------------------------------------------------------------------------
// backward sums. The order of the adds is fixed by idx alone: a row's terms are added one after another in
// position order, except that each aligned chunk of CHUNK sorted positions lying wholly inside the row is
// added as one term, its own sum computed beforehand in the same sequential way (emb_chunk_sums). So a row
// used k times costs one thread ≤ 2·CHUNK + k/CHUNK dependent steps instead of k, for frequent tokens.
// Each thread sums 4 neighbouring channels at once (a vec4 add rounds each lane as a scalar add would, so the
// bits are those of one thread per channel): a loop's cost per invocation, large on SwiftShader, is paid once
// per 4 channels, and each position is looked up once for them. Channels past C read channel C-1 and are not
// stored. A thread's work item is (slot, channel group): p.n = slots · G, G = ceil(C / 4).

const CHUNK: u32 = 64u;

@group(0) @binding(2) var<storage, read> w_pos: array<u32>;   // sorted positions
@group(0) @binding(3) var<storage, read> w_dout: array<f32>;  // (N, C)

fn groups() -> u32 { return (p.C + 3u) / 4u; }

// row[c .. c+4] of a (·, C) array at flat row offset b, clamped to the row's last channel
fn dout4(b: u32, c: u32) -> vec4f {
  let m = b + p.C - 1u;
  return vec4f(w_dout[min(b + c, m)], w_dout[min(b + c + 1u, m)], w_dout[min(b + c + 2u, m)], w_dout[min(b + c + 3u, m)]);
}

// init + dout[pos[j], c .. c+4] for j in lo..hi, one add after another
fn run_sum(init: vec4f, lo: u32, hi: u32, c: u32) -> vec4f {
  var sum = init;
  for (var j = lo; j < hi; j++) { sum += dout4(w_pos[j] * p.C, c); }
  return sum;
}

// partial[q, c] = sum of sorted positions [q·CHUNK, (q+1)·CHUNK) when they all belong to one row (the padding
// row and dropped indices excepted); other chunks are left unwritten and never read.
// Slots are chunks, p.n = chunks · G. bindings: sorted keys, sorted positions, dout, partial
@group(0) @binding(1) var<storage, read> c_keys: array<u32>;
@group(0) @binding(4) var<storage, read_write> c_partial: array<f32>;

@compute @workgroup_size(WG)
fn emb_chunk_sums(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let q = i / groups();
  let c = 4u * (i - q * groups());
  let lo = q * CHUNK;
  let k = c_keys[lo];
  if (k != c_keys[lo + CHUNK - 1u] || k >= p.V || k == p.pad) { return; }
  let sum = run_sum(vec4f(0.0), lo, lo + CHUNK, c);
  for (var l = 0u; l < 4u && c + l < p.C; l++) { c_partial[q * p.C + c + l] = sum[l]; }
}

@group(0) @binding(4) var<storage, read> w_partial: array<f32>;
@group(0) @binding(5) var<storage, read_write> w_dweight: array<f32>;

// dweight[v, c .. c+4] for a row whose sorted positions are [lo, hi): Σ dout[pos, c] in the order above
fn row_sum(lo: u32, hi: u32, c: u32) -> vec4f {
  if (hi == lo + 1u) { return vec4f(0.0) + dout4(w_pos[lo] * p.C, c); } // most rows of a batch: no loop
  let q0 = (lo + CHUNK - 1u) / CHUNK; // whole chunks inside the row: q0 .. q1
  let q1 = hi / CHUNK;
  if (q0 >= q1) { return run_sum(vec4f(0.0), lo, hi, c); }
  var sum = run_sum(vec4f(0.0), lo, q0 * CHUNK, c);
  for (var q = q0; q < q1; q++) {
    let m = q * p.C + p.C - 1u;
    let b = q * p.C + c;
    sum += vec4f(w_partial[min(b, m)], w_partial[min(b + 1u, m)], w_partial[min(b + 2u, m)], w_partial[min(b + 3u, m)]);
  }
  return run_sum(sum, q1 * CHUNK, hi, c);
}

fn store_row(v: u32, c: u32, sum: vec4f) {
  if (c + 4u <= p.C && p.accumulate == 0u) {
    let i = v * p.C + c;
    w_dweight[i] = sum.x; w_dweight[i + 1u] = sum.y; w_dweight[i + 2u] = sum.z; w_dweight[i + 3u] = sum.w;
    return;
  }
  for (var l = 0u; l < 4u && c + l < p.C; l++) {
    let i = v * p.C + c + l;
    if (p.accumulate == 1u) { w_dweight[i] += sum[l]; } else { w_dweight[i] = sum[l]; }
  }
}

// Two ways to cover the rows; the host picks the smaller launch, min(V, N) slots (client/ops/embedding.ts).
// By row: slots are rows, p.n = V · G; writes every row (unused ones get 0, or are left alone with
// accumulate). Needs `range` zero-filled. bindings: range, sorted positions, dout, partial, dweight
@group(0) @binding(1) var<storage, read> w_range: array<u32>;

@compute @workgroup_size(WG)
fn embedding_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let v = i / groups();
  let c = 4u * (i - v * groups());
  let lo = w_range[2u * v];
  let hi = select(w_range[2u * v + 1u], lo, v == p.pad); // the padding row gets no gradient
  if (p.accumulate == 1u && lo == hi) { return; }
  store_row(v, c, row_sum(lo, hi, c));
}

// By run: slots are sorted positions, p.n = N · G; the threads at the first position of each row's run sum
// that row, the others return at once. Writes used rows only: the host zeroes dweight first (unless
// accumulating). Reads only the ends of used rows, so `range` needs no fill.
// bindings: sorted keys, sorted positions, dout, partial, dweight, range
@group(0) @binding(1) var<storage, read> r_keys: array<u32>;
@group(0) @binding(6) var<storage, read> r_range: array<u32>;

@compute @workgroup_size(WG)
fn embedding_bwd_runs(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let j = i / groups();
  let c = 4u * (i - j * groups());
  let v = r_keys[j];
  if (v >= p.V || v == p.pad || (j > 0u && r_keys[j - 1u] == v)) { return; }
  store_row(v, c, row_sum(j, r_range[2u * v + 1u], c));
}
