;; CpuAdamW's update (adamw-cpu.ts) in WebAssembly SIMD, two elements per f64x2: the same float64 operations in the
;; same order as the scalar loop it replaced (kept as the reference in tests/unit/adamw-cpu.test.ts), so every stored
;; float32 is bit for bit the same (wasm does no FMA contraction, and rounds f64 → f32 to nearest even, as JS does).
;; Per element, in float64:
;;   g = grads[i] · gradScale;  w = params[i] · decay
;;   m' = b1 · m + omb1 · g;    v' = b2 · v + (omb2 · g) · g        (omb = 1 − b, as JS computes it)
;;   out = w − (stepSize · m') / (sqrt(v') / bc2Sqrt + eps)
;; with m[i] ← f32(m'), v[i] ← f32(v'), and p[i] ← f32(out), where p holds params on entry (in place).
;; Pointers are byte offsets into the memory (any alignment); n counts elements.
;; Assembled into adamw-cpu-wasm.ts by shared/assemble-wasm.mjs.
(module
  ;; the caller's memory (adamw-cpu.ts: made at its size, never grown)
  (import "adamw" "memory" (memory 1))

  (func (export "step")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
    (param $gradScale f64) (param $decay f64) (param $b1 f64) (param $b2 f64) (param $omb1 f64) (param $omb2 f64)
    (param $stepSize f64) (param $bc2Sqrt f64) (param $eps f64)
    (local $i i32) (local $pairs i32)
    (local $G v128) (local $W v128) (local $M v128) (local $V v128)
    (local $sGradScale v128) (local $sDecay v128) (local $sB1 v128) (local $sB2 v128) (local $sOmb1 v128) (local $sOmb2 v128)
    (local $sStepSize v128) (local $sBc2Sqrt v128) (local $sEps v128)
    (local $g1 f64) (local $m1 f64) (local $v1 f64)
    (local.set $sGradScale (f64x2.splat (local.get $gradScale)))
    (local.set $sDecay (f64x2.splat (local.get $decay)))
    (local.set $sB1 (f64x2.splat (local.get $b1)))
    (local.set $sB2 (f64x2.splat (local.get $b2)))
    (local.set $sOmb1 (f64x2.splat (local.get $omb1)))
    (local.set $sOmb2 (f64x2.splat (local.get $omb2)))
    (local.set $sStepSize (f64x2.splat (local.get $stepSize)))
    (local.set $sBc2Sqrt (f64x2.splat (local.get $bc2Sqrt)))
    (local.set $sEps (f64x2.splat (local.get $eps)))
    (local.set $pairs (i32.shr_u (local.get $n) (i32.const 1)))
    (block $done
      (loop $pair
        (br_if $done (i32.ge_u (local.get $i) (local.get $pairs)))
        (local.set $G (f64x2.mul (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $g))) (local.get $sGradScale)))
        (local.set $W (f64x2.mul (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p))) (local.get $sDecay)))
        (local.set $M
          (f64x2.add
            (f64x2.mul (local.get $sB1) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $m))))
            (f64x2.mul (local.get $sOmb1) (local.get $G))))
        (local.set $V
          (f64x2.add
            (f64x2.mul (local.get $sB2) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $v))))
            (f64x2.mul (f64x2.mul (local.get $sOmb2) (local.get $G)) (local.get $G))))
        (v128.store64_lane 0 (local.get $m) (f32x4.demote_f64x2_zero (local.get $M)))
        (v128.store64_lane 0 (local.get $v) (f32x4.demote_f64x2_zero (local.get $V)))
        (v128.store64_lane 0 (local.get $p)
          (f32x4.demote_f64x2_zero
            (f64x2.sub
              (local.get $W)
              (f64x2.div
                (f64x2.mul (local.get $sStepSize) (local.get $M))
                (f64x2.add (f64x2.div (f64x2.sqrt (local.get $V)) (local.get $sBc2Sqrt)) (local.get $sEps))))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (local.set $g (i32.add (local.get $g) (i32.const 8)))
        (local.set $m (i32.add (local.get $m) (i32.const 8)))
        (local.set $v (i32.add (local.get $v) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $pair)))
    ;; an odd last element, in scalar float64
    (if (i32.and (local.get $n) (i32.const 1))
      (then
        (local.set $g1 (f64.mul (f64.promote_f32 (f32.load (local.get $g))) (local.get $gradScale)))
        (local.set $m1
          (f64.add (f64.mul (local.get $b1) (f64.promote_f32 (f32.load (local.get $m)))) (f64.mul (local.get $omb1) (local.get $g1))))
        (local.set $v1
          (f64.add (f64.mul (local.get $b2) (f64.promote_f32 (f32.load (local.get $v)))) (f64.mul (f64.mul (local.get $omb2) (local.get $g1)) (local.get $g1))))
        (f32.store (local.get $m) (f32.demote_f64 (local.get $m1)))
        (f32.store (local.get $v) (f32.demote_f64 (local.get $v1)))
        (f32.store (local.get $p)
          (f32.demote_f64
            (f64.sub
              (f64.mul (f64.promote_f32 (f32.load (local.get $p))) (local.get $decay))
              (f64.div
                (f64.mul (local.get $stepSize) (local.get $m1))
                (f64.add (f64.div (f64.sqrt (local.get $v1)) (local.get $bc2Sqrt)) (local.get $eps)))))))))
)
