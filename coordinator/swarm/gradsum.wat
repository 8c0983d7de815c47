;; The coordinator's two passes over every gradient that arrives, in WebAssembly SIMD (V8 does not vectorise JS loops:
;; these run 3-10× faster than the scalar loops kept as their reference in tests/swarm/gradsum.test.ts and ./robust.ts).
;; Pointers are byte offsets into the memory, 16-byte aligned; n counts float32 elements (any n ≥ 0).
;; Assembled into gradsum-wasm.ts by shared/assemble-wasm.mjs; coordinator/swarm/gradsum.ts loads it.
(module
  ;; the caller's memory (gradsum.ts: one per run, made at its size and never grown, as growing a memory detaches its
  ;; old ArrayBuffer, and one detached ArrayBuffer turns off a V8 fast path for every typed array in the process)
  (import "gradsum" "memory" (memory 1))

  ;; dst[i] += src[i] for i < n: float32 adds, element by element, bit for bit the scalar loop's results
  (func (export "add") (param $dst i32) (param $src i32) (param $n i32)
    (local $end i32)
    ;; eight at a time
    (local.set $end (i32.add (local.get $dst) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (block $done
      (loop $eights
        (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
        (v128.store (local.get $dst) (f32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))
        (v128.store offset=16 (local.get $dst) (f32x4.add (v128.load offset=16 (local.get $dst)) (v128.load offset=16 (local.get $src))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (br $eights)))
    ;; the last n mod 8 one by one
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 7)) (i32.const 2))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $dst) (local.get $end)))
        (f32.store (local.get $dst) (f32.add (f32.load (local.get $dst)) (f32.load (local.get $src))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $tail))))

  ;; Σ p[i]² for i < n, each square and the sum in float64 (eight partial sums): finite exactly when every element is,
  ;; as float32 squares (≤ 1.2e77) cannot overflow a float64 sum
  (func (export "sumsq") (param $p i32) (param $n i32) (result f64)
    (local $end i32) (local $x v128) (local $y v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $s f64)
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (block $done
      (loop $eights
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $x (v128.load (local.get $p)))
        (local.set $y (v128.load offset=16 (local.get $p)))
        (local.set $s0 (f64x2.add (local.get $s0) (f64x2.mul (f64x2.promote_low_f32x4 (local.get $x)) (f64x2.promote_low_f32x4 (local.get $x)))))
        (local.set $s2 (f64x2.add (local.get $s2) (f64x2.mul (f64x2.promote_low_f32x4 (local.get $y)) (f64x2.promote_low_f32x4 (local.get $y)))))
        ;; the high halves moved low
        (local.set $x (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x)))
        (local.set $y (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $y) (local.get $y)))
        (local.set $s1 (f64x2.add (local.get $s1) (f64x2.mul (f64x2.promote_low_f32x4 (local.get $x)) (f64x2.promote_low_f32x4 (local.get $x)))))
        (local.set $s3 (f64x2.add (local.get $s3) (f64x2.mul (f64x2.promote_low_f32x4 (local.get $y)) (f64x2.promote_low_f32x4 (local.get $y)))))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (br $eights)))
    (local.set $s0 (f64x2.add (f64x2.add (local.get $s0) (local.get $s1)) (f64x2.add (local.get $s2) (local.get $s3))))
    (local.set $s (f64.add (f64x2.extract_lane 0 (local.get $s0)) (f64x2.extract_lane 1 (local.get $s0))))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 7)) (i32.const 2))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $s (f64.add (local.get $s) (f64.mul (f64.promote_f32 (f32.load (local.get $p))) (f64.promote_f32 (f32.load (local.get $p))))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $tail)))
    (local.get $s))
)
