;; SIMD loops for slideseg's wasm training kernels, run on the TF.js wasm heap: the module imports the backend's
;; own memory, so pointers are the heap byte offsets of tensors. Compiled by wat2wasm (wabt) into simd-module.ts:
;;   npx tsx src/engine/kernels/simd-build.ts
;; Each function handles n rounded down to a multiple of 4; callers finish the last n % 4 elements.
(module
  (import "env" "memory" (memory 1))

  ;; acc[i] += a[i] * b[i] for i < n (float32)
  (func (export "mulAcc") (param $acc i32) (param $a i32) (param $b i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $acc) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $acc) (local.get $end)))
        (v128.store (local.get $acc)
          (f32x4.add (v128.load (local.get $acc))
            (f32x4.mul (v128.load (local.get $a)) (v128.load (local.get $b)))))
        (local.set $acc (i32.add (local.get $acc) (i32.const 16)))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (br $next))))

  ;; exp(x) for x in [-87, 0] (Cephes expf: Cody-Waite reduction by ln 2, degree-6 polynomial, 2^n from the
  ;; exponent bits); relative error ~1e-7.
  (func $exp (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.max (local.get $x) (f32x4.splat (f32.const -87))))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (f32x4.splat (f32.const 1.44269504088896341)))))
    (local.set $r (f32x4.sub (local.get $x) (f32x4.mul (local.get $n) (f32x4.splat (f32.const 0.693359375)))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $n) (f32x4.splat (f32.const -2.12194440e-4)))))
    (local.set $p (f32x4.splat (f32.const 1.9875691500e-4)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 1.3981999507e-3))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 8.3334519073e-3))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 4.1665795894e-2))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 1.6666665459e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 5.0000001201e-1))))
    (local.set $p
      (f32x4.add
        (f32x4.add (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r))
        (f32x4.splat (f32.const 1))))
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (i32x4.splat (i32.const 127))) (i32.const 23))))

  ;; Φ(x) from x and e = exp(-x²/2): erf by Abramowitz & Stegun 7.1.26, as TF.js's Erf kernels.
  (func $cdf (param $x v128) (param $e v128) (result v128)
    (local $t v128) (local $q v128)
    (local.set $t
      (f32x4.div (f32x4.splat (f32.const 1))
        (f32x4.add (f32x4.splat (f32.const 1))
          (f32x4.mul (f32x4.splat (f32.const 0.2316419020928338)) (f32x4.abs (local.get $x))))))
    ;; P·|x|/√2 with P = 0.3275911 folded: 0.3275911 / √2 = 0.23164190...
    (local.set $q (f32x4.splat (f32.const 1.061405429)))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $t)) (f32x4.splat (f32.const -1.453152027))))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $t)) (f32x4.splat (f32.const 1.421413741))))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $t)) (f32x4.splat (f32.const -0.284496736))))
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $t)) (f32x4.splat (f32.const 0.254829592))))
    ;; half = ½(1 − erf(|x|/√2))
    (local.set $q (f32x4.mul (f32x4.splat (f32.const 0.5)) (f32x4.mul (f32x4.mul (local.get $q) (local.get $t)) (local.get $e))))
    (v128.bitselect
      (f32x4.sub (f32x4.splat (f32.const 1)) (local.get $q))
      (local.get $q)
      (f32x4.ge (local.get $x) (f32x4.splat (f32.const 0)))))

  ;; y[i] = x[i]·Φ(x[i])
  (func (export "gelu") (param $y i32) (param $x i32) (param $n i32)
    (local $end i32) (local $v v128)
    (local.set $end (i32.add (local.get $y) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $y) (local.get $end)))
        (local.set $v (v128.load (local.get $x)))
        (v128.store (local.get $y)
          (f32x4.mul (local.get $v)
            (call $cdf (local.get $v)
              (call $exp (f32x4.mul (f32x4.splat (f32.const -0.5)) (f32x4.mul (local.get $v) (local.get $v)))))))
        (local.set $y (i32.add (local.get $y) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (br $next))))

  ;; dx[i] = dy[i]·(Φ(x[i]) + x[i]·φ(x[i]))
  (func (export "geluGrad") (param $dx i32) (param $dy i32) (param $x i32) (param $n i32)
    (local $end i32) (local $v v128) (local $e v128)
    (local.set $end (i32.add (local.get $dx) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $dx) (local.get $end)))
        (local.set $v (v128.load (local.get $x)))
        (local.set $e (call $exp (f32x4.mul (f32x4.splat (f32.const -0.5)) (f32x4.mul (local.get $v) (local.get $v)))))
        (v128.store (local.get $dx)
          (f32x4.mul (v128.load (local.get $dy))
            (f32x4.add (call $cdf (local.get $v) (local.get $e))
              (f32x4.mul (local.get $v) (f32x4.mul (local.get $e) (f32x4.splat (f32.const 0.3989422804014327)))))))
        (local.set $dx (i32.add (local.get $dx) (i32.const 16)))
        (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (br $next))))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; acc[j] += x[r, j] for rows r < rows of x [rows, c]; c a multiple of 4 (float32 partial sums).
  (func (export "colSum") (param $acc i32) (param $x i32) (param $rows i32) (param $c i32)
    (local $bytes i32) (local $i i32) (local $end i32)
    (local.set $bytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $rows) (local.get $bytes))))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $i (i32.const 0))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $i) (local.get $bytes)))
            (v128.store (i32.add (local.get $acc) (local.get $i))
              (f32x4.add (v128.load (i32.add (local.get $acc) (local.get $i)))
                (v128.load (i32.add (local.get $x) (local.get $i)))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $next)))
        (local.set $x (i32.add (local.get $x) (local.get $bytes)))
        (br $row))))

  ;; LayerNorm of rows x [rows, c] (c a multiple of 4): y = (x − μ)/σ·γ + β, and μ, 1/σ per row.
  (func (export "layerNorm")
    (param $y i32) (param $x i32) (param $g i32) (param $b i32) (param $meanOut i32) (param $invOut i32)
    (param $rows i32) (param $c i32) (param $eps f32)
    (local $bytes i32) (local $i i32) (local $r i32) (local $acc v128) (local $d v128)
    (local $mean f32) (local $inv f32) (local $mv v128) (local $iv v128)
    (local.set $bytes (i32.shl (local.get $c) (i32.const 2)))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $done1
          (loop $next1
            (br_if $done1 (i32.ge_u (local.get $i) (local.get $bytes)))
            (local.set $acc (f32x4.add (local.get $acc) (v128.load (i32.add (local.get $x) (local.get $i)))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $next1)))
        (local.set $mean (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $c))))
        (local.set $mv (f32x4.splat (local.get $mean)))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $done2
          (loop $next2
            (br_if $done2 (i32.ge_u (local.get $i) (local.get $bytes)))
            (local.set $d (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $mv)))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $d) (local.get $d))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $next2)))
        (local.set $inv
          (f32.div (f32.const 1)
            (f32.sqrt (f32.add (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $c))) (local.get $eps)))))
        (local.set $iv (f32x4.splat (local.get $inv)))
        (local.set $i (i32.const 0))
        (block $done3
          (loop $next3
            (br_if $done3 (i32.ge_u (local.get $i) (local.get $bytes)))
            (v128.store (i32.add (local.get $y) (local.get $i))
              (f32x4.add
                (f32x4.mul
                  (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $mv)) (local.get $iv))
                  (v128.load (i32.add (local.get $g) (local.get $i))))
                (v128.load (i32.add (local.get $b) (local.get $i)))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $next3)))
        (f32.store (local.get $meanOut) (local.get $mean))
        (f32.store (local.get $invOut) (local.get $inv))
        (local.set $x (i32.add (local.get $x) (local.get $bytes)))
        (local.set $y (i32.add (local.get $y) (local.get $bytes)))
        (local.set $meanOut (i32.add (local.get $meanOut) (i32.const 4)))
        (local.set $invOut (i32.add (local.get $invOut) (i32.const 4)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; LayerNorm backward over rows [rows, c] (c a multiple of 4): dx, and dγ += dy·x̂, dβ += dy into float32
  ;; partial sums (the caller flushes them to float64 every few rows).
  (func (export "layerNormGrad")
    (param $dx i32) (param $dy i32) (param $x i32) (param $g i32) (param $meanIn i32) (param $invIn i32)
    (param $dg i32) (param $db i32) (param $rows i32) (param $c i32)
    (local $bytes i32) (local $i i32) (local $r i32) (local $mv v128) (local $iv v128)
    (local $xh v128) (local $d v128) (local $gv v128) (local $sg v128) (local $sgx v128)
    (local $meanG v128) (local $meanGx v128) (local $cf f32)
    (local.set $bytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $cf (f32.convert_i32_u (local.get $c)))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $mv (v128.load32_splat (local.get $meanIn)))
        (local.set $iv (v128.load32_splat (local.get $invIn)))
        (local.set $sg (v128.const i32x4 0 0 0 0))
        (local.set $sgx (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $done1
          (loop $next1
            (br_if $done1 (i32.ge_u (local.get $i) (local.get $bytes)))
            (local.set $xh
              (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $mv)) (local.get $iv)))
            (local.set $d (v128.load (i32.add (local.get $dy) (local.get $i))))
            (local.set $gv (f32x4.mul (local.get $d) (v128.load (i32.add (local.get $g) (local.get $i)))))
            (local.set $sg (f32x4.add (local.get $sg) (local.get $gv)))
            (local.set $sgx (f32x4.add (local.get $sgx) (f32x4.mul (local.get $gv) (local.get $xh))))
            (v128.store (i32.add (local.get $dg) (local.get $i))
              (f32x4.add (v128.load (i32.add (local.get $dg) (local.get $i))) (f32x4.mul (local.get $d) (local.get $xh))))
            (v128.store (i32.add (local.get $db) (local.get $i))
              (f32x4.add (v128.load (i32.add (local.get $db) (local.get $i))) (local.get $d)))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $next1)))
        (local.set $meanG (f32x4.splat (f32.div (call $hsum (local.get $sg)) (local.get $cf))))
        (local.set $meanGx (f32x4.splat (f32.div (call $hsum (local.get $sgx)) (local.get $cf))))
        (local.set $i (i32.const 0))
        (block $done2
          (loop $next2
            (br_if $done2 (i32.ge_u (local.get $i) (local.get $bytes)))
            (local.set $xh
              (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $mv)) (local.get $iv)))
            (local.set $gv
              (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $i))) (v128.load (i32.add (local.get $g) (local.get $i)))))
            (v128.store (i32.add (local.get $dx) (local.get $i))
              (f32x4.mul
                (f32x4.sub (f32x4.sub (local.get $gv) (local.get $meanG)) (f32x4.mul (local.get $xh) (local.get $meanGx)))
                (local.get $iv)))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $next2)))
        (local.set $x (i32.add (local.get $x) (local.get $bytes)))
        (local.set $dy (i32.add (local.get $dy) (local.get $bytes)))
        (local.set $dx (i32.add (local.get $dx) (local.get $bytes)))
        (local.set $meanIn (i32.add (local.get $meanIn) (i32.const 4)))
        (local.set $invIn (i32.add (local.get $invIn) (i32.const 4)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; c [m, n] += aᵀ b for a [k, m] and b [k, n] (row-major float32; m a multiple of 4, n of 8): the weight-gradient
  ;; product Xᵀ dY. Register tiles of 4 rows × 8 columns of c, k innermost; callers pass k in cache-sized chunks.
  (func (export "matMulAtB") (param $c i32) (param $a i32) (param $b i32) (param $m i32) (param $n i32) (param $k i32)
    (local $i i32) (local $j i32) (local $sa i32) (local $sb i32) (local $pa i32) (local $pb i32) (local $pc i32)
    (local $aEnd i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $b0 v128) (local $b1 v128) (local $av v128)
    (local.set $sa (i32.shl (local.get $m) (i32.const 2)))
    (local.set $sb (i32.shl (local.get $n) (i32.const 2)))
    (block $iDone
      (loop $iNext
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $j (i32.const 0))
        (block $jDone
          (loop $jNext
            (br_if $jDone (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $pc
              (i32.add (local.get $c)
                (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 2))))
            (local.set $c00 (v128.load (local.get $pc)))
            (local.set $c01 (v128.load offset=16 (local.get $pc)))
            (local.set $c10 (v128.load (i32.add (local.get $pc) (local.get $sb))))
            (local.set $c11 (v128.load offset=16 (i32.add (local.get $pc) (local.get $sb))))
            (local.set $c20 (v128.load (i32.add (local.get $pc) (i32.shl (local.get $sb) (i32.const 1)))))
            (local.set $c21 (v128.load offset=16 (i32.add (local.get $pc) (i32.shl (local.get $sb) (i32.const 1)))))
            (local.set $c30 (v128.load (i32.add (local.get $pc) (i32.mul (local.get $sb) (i32.const 3)))))
            (local.set $c31 (v128.load offset=16 (i32.add (local.get $pc) (i32.mul (local.get $sb) (i32.const 3)))))
            (local.set $pa (i32.add (local.get $a) (i32.shl (local.get $i) (i32.const 2))))
            (local.set $pb (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $aEnd (i32.add (local.get $pa) (i32.mul (local.get $k) (local.get $sa))))
            (block $kDone
              (loop $kNext
                (br_if $kDone (i32.ge_u (local.get $pa) (local.get $aEnd)))
                (local.set $b0 (v128.load (local.get $pb)))
                (local.set $b1 (v128.load offset=16 (local.get $pb)))
                (local.set $av (v128.load32_splat (local.get $pa)))
                (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $av) (local.get $b0))))
                (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $av) (local.get $b1))))
                (local.set $av (v128.load32_splat offset=4 (local.get $pa)))
                (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $av) (local.get $b0))))
                (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $av) (local.get $b1))))
                (local.set $av (v128.load32_splat offset=8 (local.get $pa)))
                (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $av) (local.get $b0))))
                (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $av) (local.get $b1))))
                (local.set $av (v128.load32_splat offset=12 (local.get $pa)))
                (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $av) (local.get $b0))))
                (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $av) (local.get $b1))))
                (local.set $pa (i32.add (local.get $pa) (local.get $sa)))
                (local.set $pb (i32.add (local.get $pb) (local.get $sb)))
                (br $kNext)))
            (v128.store (local.get $pc) (local.get $c00))
            (v128.store offset=16 (local.get $pc) (local.get $c01))
            (v128.store (i32.add (local.get $pc) (local.get $sb)) (local.get $c10))
            (v128.store offset=16 (i32.add (local.get $pc) (local.get $sb)) (local.get $c11))
            (v128.store (i32.add (local.get $pc) (i32.shl (local.get $sb) (i32.const 1))) (local.get $c20))
            (v128.store offset=16 (i32.add (local.get $pc) (i32.shl (local.get $sb) (i32.const 1))) (local.get $c21))
            (v128.store (i32.add (local.get $pc) (i32.mul (local.get $sb) (i32.const 3))) (local.get $c30))
            (v128.store offset=16 (i32.add (local.get $pc) (i32.mul (local.get $sb) (i32.const 3))) (local.get $c31))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $jNext)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $iNext))))

  ;; One output pixel of a bilinear resize over ch channels (a multiple of 4), in the JavaScript loop's order:
  ;; t = tl + (tr − tl)·fc, b = bl + (br − bl)·fc, out = t + (b − t)·fr.
  (func (export "bilerp")
    (param $out i32) (param $tl i32) (param $tr i32) (param $bl i32) (param $br i32) (param $ch i32)
    (param $fc f32) (param $fr f32)
    (local $i i32) (local $bytes i32) (local $vc v128) (local $vr v128) (local $t v128) (local $b v128) (local $x v128)
    (local.set $bytes (i32.shl (local.get $ch) (i32.const 2)))
    (local.set $vc (f32x4.splat (local.get $fc)))
    (local.set $vr (f32x4.splat (local.get $fr)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $bytes)))
        (local.set $x (v128.load (i32.add (local.get $tl) (local.get $i))))
        (local.set $t (f32x4.add (local.get $x)
          (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $tr) (local.get $i))) (local.get $x)) (local.get $vc))))
        (local.set $x (v128.load (i32.add (local.get $bl) (local.get $i))))
        (local.set $b (f32x4.add (local.get $x)
          (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $br) (local.get $i))) (local.get $x)) (local.get $vc))))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (f32x4.add (local.get $t) (f32x4.mul (f32x4.sub (local.get $b) (local.get $t)) (local.get $vr))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; The adjoint of bilerp: the four source pixels += g·weight over ch channels (a multiple of 4).
  (func (export "bilerpGrad")
    (param $g i32) (param $tl i32) (param $tr i32) (param $bl i32) (param $br i32) (param $ch i32)
    (param $fc f32) (param $fr f32)
    (local $i i32) (local $bytes i32) (local $v v128)
    (local $wtl v128) (local $wtr v128) (local $wbl v128) (local $wbr v128)
    (local.set $bytes (i32.shl (local.get $ch) (i32.const 2)))
    (local.set $wtl (f32x4.splat (f32.mul (f32.sub (f32.const 1) (local.get $fr)) (f32.sub (f32.const 1) (local.get $fc)))))
    (local.set $wtr (f32x4.splat (f32.mul (f32.sub (f32.const 1) (local.get $fr)) (local.get $fc))))
    (local.set $wbl (f32x4.splat (f32.mul (local.get $fr) (f32.sub (f32.const 1) (local.get $fc)))))
    (local.set $wbr (f32x4.splat (f32.mul (local.get $fr) (local.get $fc))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $bytes)))
        (local.set $v (v128.load (i32.add (local.get $g) (local.get $i))))
        (v128.store (i32.add (local.get $tl) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $tl) (local.get $i))) (f32x4.mul (local.get $v) (local.get $wtl))))
        (v128.store (i32.add (local.get $tr) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $tr) (local.get $i))) (f32x4.mul (local.get $v) (local.get $wtr))))
        (v128.store (i32.add (local.get $bl) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $bl) (local.get $i))) (f32x4.mul (local.get $v) (local.get $wbl))))
        (v128.store (i32.add (local.get $br) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $br) (local.get $i))) (f32x4.mul (local.get $v) (local.get $wbr))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; c [m, n] += a b for a [m, k] (row-major, row stride k) and b [k, n] (m a multiple of 4, n of 8): the same
  ;; 4 × 8 register tiles as matMulAtB, with the four rows of a read through their own pointers.
  (func (export "matMulAB") (param $c i32) (param $a i32) (param $b i32) (param $m i32) (param $n i32) (param $k i32)
    (local $i i32) (local $j i32) (local $sa i32) (local $sb i32) (local $pb i32) (local $pc i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $end i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $b0 v128) (local $b1 v128) (local $av v128)
    (local.set $sa (i32.shl (local.get $k) (i32.const 2)))
    (local.set $sb (i32.shl (local.get $n) (i32.const 2)))
    (block $iDone
      (loop $iNext
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $j (i32.const 0))
        (block $jDone
          (loop $jNext
            (br_if $jDone (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $pc
              (i32.add (local.get $c)
                (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 2))))
            (local.set $c00 (v128.load (local.get $pc)))
            (local.set $c01 (v128.load offset=16 (local.get $pc)))
            (local.set $c10 (v128.load (i32.add (local.get $pc) (local.get $sb))))
            (local.set $c11 (v128.load offset=16 (i32.add (local.get $pc) (local.get $sb))))
            (local.set $c20 (v128.load (i32.add (local.get $pc) (i32.shl (local.get $sb) (i32.const 1)))))
            (local.set $c21 (v128.load offset=16 (i32.add (local.get $pc) (i32.shl (local.get $sb) (i32.const 1)))))
            (local.set $c30 (v128.load (i32.add (local.get $pc) (i32.mul (local.get $sb) (i32.const 3)))))
            (local.set $c31 (v128.load offset=16 (i32.add (local.get $pc) (i32.mul (local.get $sb) (i32.const 3)))))
            (local.set $p0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $sa))))
            (local.set $p1 (i32.add (local.get $p0) (local.get $sa)))
            (local.set $p2 (i32.add (local.get $p1) (local.get $sa)))
            (local.set $p3 (i32.add (local.get $p2) (local.get $sa)))
            (local.set $end (local.get $p1))
            (local.set $pb (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
            (block $kDone
              (loop $kNext
                (br_if $kDone (i32.ge_u (local.get $p0) (local.get $end)))
                (local.set $b0 (v128.load (local.get $pb)))
                (local.set $b1 (v128.load offset=16 (local.get $pb)))
                (local.set $av (v128.load32_splat (local.get $p0)))
                (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $av) (local.get $b0))))
                (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $av) (local.get $b1))))
                (local.set $av (v128.load32_splat (local.get $p1)))
                (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $av) (local.get $b0))))
                (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $av) (local.get $b1))))
                (local.set $av (v128.load32_splat (local.get $p2)))
                (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $av) (local.get $b0))))
                (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $av) (local.get $b1))))
                (local.set $av (v128.load32_splat (local.get $p3)))
                (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $av) (local.get $b0))))
                (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $av) (local.get $b1))))
                (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
                (local.set $p1 (i32.add (local.get $p1) (i32.const 4)))
                (local.set $p2 (i32.add (local.get $p2) (i32.const 4)))
                (local.set $p3 (i32.add (local.get $p3) (i32.const 4)))
                (local.set $pb (i32.add (local.get $pb) (local.get $sb)))
                (br $kNext)))
            (v128.store (local.get $pc) (local.get $c00))
            (v128.store offset=16 (local.get $pc) (local.get $c01))
            (v128.store (i32.add (local.get $pc) (local.get $sb)) (local.get $c10))
            (v128.store offset=16 (i32.add (local.get $pc) (local.get $sb)) (local.get $c11))
            (v128.store (i32.add (local.get $pc) (i32.shl (local.get $sb) (i32.const 1))) (local.get $c20))
            (v128.store offset=16 (i32.add (local.get $pc) (i32.shl (local.get $sb) (i32.const 1))) (local.get $c21))
            (v128.store (i32.add (local.get $pc) (i32.mul (local.get $sb) (i32.const 3))) (local.get $c30))
            (v128.store offset=16 (i32.add (local.get $pc) (i32.mul (local.get $sb) (i32.const 3))) (local.get $c31))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $jNext)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $iNext))))

  ;; Inverted dropout: y[i] = x[i]·scale where the top 24 bits of lowbias32(i·φ + key) are below threshold, else 0
  ;; (dropout.ts's kept(), four element indices per step).
  (func (export "dropout") (param $y i32) (param $x i32) (param $n i32) (param $key i32) (param $threshold i32)
    (param $scale f32)
    (local $end i32) (local $idx v128) (local $h v128) (local $keyv v128) (local $thr v128) (local $sc v128)
    (local.set $end (i32.add (local.get $y) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $idx (v128.const i32x4 0 1 2 3))
    (local.set $keyv (i32x4.splat (local.get $key)))
    (local.set $thr (i32x4.splat (local.get $threshold)))
    (local.set $sc (f32x4.splat (local.get $scale)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $y) (local.get $end)))
        (local.set $h (i32x4.add (i32x4.mul (local.get $idx) (i32x4.splat (i32.const 0x9e3779b9))) (local.get $keyv)))
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
        (local.set $h (i32x4.mul (local.get $h) (i32x4.splat (i32.const 0x7feb352d))))
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 15))))
        (local.set $h (i32x4.mul (local.get $h) (i32x4.splat (i32.const 0x846ca68b))))
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
        (v128.store (local.get $y)
          (v128.and
            (f32x4.mul (v128.load (local.get $x)) (local.get $sc))
            (i32x4.lt_u (i32x4.shr_u (local.get $h) (i32.const 8)) (local.get $thr))))
        (local.set $idx (i32x4.add (local.get $idx) (i32x4.splat (i32.const 4))))
        (local.set $y (i32.add (local.get $y) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (br $next))))
)
