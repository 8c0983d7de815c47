// Embedding lookup, forward and backward. Shapes: idx (N) i32, weight (V, C), out / dout (N, C), dweight (V, C).
// Backward is a scatter-add done without float atomics and bit-for-bit deterministic: the positions are
// sorted by index with a stable LSD radix sort (8 bits per pass: tile histograms, one scan, stable scatter),
// each row's range in the sorted list is found, and one thread per (row, channel) sums its row's upstream
// grads in position order (long rows with help: see emb_chunk_sums). Integer atomics only count and set
// bits (in workgroup memory), so no result depends on timing.
// Invariants: forward writes `out` (=). Backward writes every element of dweight (=), rows never used get
// exactly 0, the padding row gets 0; with `accumulate` it adds (+=) to used rows only and leaves the rest.
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

// which threads of the tile hold each digit: bit (l % 32) of masks[d * WORDS + l / 32] is set when thread l
// has digit d (8 KiB). OR is commutative, so the masks do not depend on the order the atomics land in.
const WORDS: u32 = TILE / 32u;
var<workgroup> masks: array<atomic<u32>, BINS * WORDS>;

@compute @workgroup_size(TILE)
fn emb_sort_scatter(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = wid.x + wid.y * nwg.x;
  let i = t * TILE + lid;
  let live = t < p.tiles && i < p.n;
  for (var w = lid; w < BINS * WORDS; w += TILE) { atomicStore(&masks[w], 0u); }
  workgroupBarrier();
  var key = 0u;
  var d = 0u;
  if (live) {
    key = key_of(x_keys[i]);
    d = (key >> p.shift) & 255u;
    atomicOr(&masks[d * WORDS + lid / 32u], 1u << (lid & 31u));
  }
  workgroupBarrier();
  if (!live) { return; }
  // rank among the tile's earlier threads with the same digit: popcounts of the words before, and of the
  // bits below this thread's in its own word
  var rank = countOneBits(atomicLoad(&masks[d * WORDS + lid / 32u]) & ((1u << (lid & 31u)) - 1u));
  for (var w = 0u; w < lid / 32u; w++) { rank += countOneBits(atomicLoad(&masks[d * WORDS + w])); }
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

const CHUNK: u32 = 64u;

@group(0) @binding(2) var<storage, read> w_pos: array<u32>;   // sorted positions
@group(0) @binding(3) var<storage, read> w_dout: array<f32>;  // (N, C)

// init + dout[pos[j], c] for j in lo..hi, one add after another. Eight loads are issued before their adds, so
// a long run waits on memory once per eight terms; the adds keep their order (same bits as a plain loop).
fn run_sum(init: f32, lo: u32, hi: u32, c: u32) -> f32 {
  var sum = init;
  var j = lo;
  while (j + 8u <= hi) {
    let a = vec4f(dout_at(j, c), dout_at(j + 1u, c), dout_at(j + 2u, c), dout_at(j + 3u, c));
    let b = vec4f(dout_at(j + 4u, c), dout_at(j + 5u, c), dout_at(j + 6u, c), dout_at(j + 7u, c));
    sum += a.x; sum += a.y; sum += a.z; sum += a.w;
    sum += b.x; sum += b.y; sum += b.z; sum += b.w;
    j += 8u;
  }
  for (; j < hi; j++) { sum += dout_at(j, c); }
  return sum;
}

fn dout_at(j: u32, c: u32) -> f32 { return w_dout[w_pos[j] * p.C + c]; }

// partial[q, c] = sum of sorted positions [q·CHUNK, (q+1)·CHUNK) when they all belong to one row (the padding
// row and dropped indices excepted); other chunks are left unwritten and never read.
// One thread per (chunk, channel), p.n = chunks · C. bindings: sorted keys, sorted positions, dout, partial
@group(0) @binding(1) var<storage, read> c_keys: array<u32>;
@group(0) @binding(4) var<storage, read_write> c_partial: array<f32>;

@compute @workgroup_size(WG)
fn emb_chunk_sums(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let q = i / p.C;
  let c = i - q * p.C;
  let lo = q * CHUNK;
  let k = c_keys[lo];
  if (k != c_keys[lo + CHUNK - 1u] || k >= p.V || k == p.pad) { return; }
  c_partial[i] = run_sum(0.0, lo, lo + CHUNK, c);
}

// dweight[v, c] = Σ dout[pos, c] over the positions of row v, in the order above. One thread per (row,
// channel), p.n = V · C; neighbouring threads read neighbouring channels.
// bindings: range, sorted positions, dout, partial, dweight
@group(0) @binding(1) var<storage, read> w_range: array<u32>;
@group(0) @binding(4) var<storage, read> w_partial: array<f32>;
@group(0) @binding(5) var<storage, read_write> w_dweight: array<f32>;

@compute @workgroup_size(WG)
fn embedding_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let v = i / p.C;
  let c = i - v * p.C;
  let lo = w_range[2u * v];
  let hi = select(w_range[2u * v + 1u], lo, v == p.pad); // the padding row gets no gradient
  if (p.accumulate == 1u && lo == hi) { return; }
  let q0 = (lo + CHUNK - 1u) / CHUNK; // whole chunks inside the row: q0 .. q1
  let q1 = hi / CHUNK;
  var sum: f32;
  if (q0 < q1) {
    sum = run_sum(0.0, lo, q0 * CHUNK, c);
    for (var q = q0; q < q1; q++) { sum += w_partial[q * p.C + c]; }
    sum = run_sum(sum, q1 * CHUNK, hi, c);
  } else {
    sum = run_sum(0.0, lo, hi, c);
  }
  if (p.accumulate == 1u) { w_dweight[i] += sum; } else { w_dweight[i] = sum; }
}
