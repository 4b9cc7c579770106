;; The round-trip guest of `local:roundtrip/baz` written against the synchronous ABI.
;;
;; `foo` is an `async func` in the interface, but this component lowers its import of it
;; WITHOUT `async` (the core call blocks until the callee has returned) and lifts its
;; export WITHOUT `async` (no callback: the core function returns the result, and
;; post-return runs afterwards).  The export appends " - entered guest", calls the
;; import with that, and appends " - exited guest" to what the import returned.
;;
;; Memory is a bump allocator.  Strings and return areas of a call stay allocated until
;; its post-return; when no call is in flight any more the allocator starts over.
(component
  (type $foo-type (func async (param "s" string) (result string)))
  (type $baz (instance
    (export "foo" (func async (param "s" string) (result string)))))
  (import "local:roundtrip/baz" (instance $imported (type $baz)))

  ;; Memory and allocator come first so the import can be lowered before the module that
  ;; calls it is instantiated.
  (core module $Libc
    (memory (export "memory") 1)
    (global $base i32 (i32.const 1024))
    (global $bump (mut i32) (i32.const 1024))
    ;; realloc(old_ptr, old_size, align, new_size) -> ptr; contents of an old block move.
    (func (export "realloc") (param $old i32) (param $old_size i32) (param $align i32)
        (param $new_size i32) (result i32)
      (local $ptr i32)
      (local $end i64)
      (local $have i64)
      (local.set $ptr
        (i32.and
          (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      ;; 64-bit arithmetic so a huge request cannot wrap around past the check.
      (local.set $end
        (i64.add (i64.extend_i32_u (local.get $ptr)) (i64.extend_i32_u (local.get $new_size))))
      (local.set $have (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
      (if (i64.gt_u (local.get $end) (local.get $have))
        (then
          (if (i32.eq
                (memory.grow
                  (i32.wrap_i64
                    (i64.shr_u
                      (i64.add (i64.sub (local.get $end) (local.get $have)) (i64.const 65535))
                      (i64.const 16))))
                (i32.const -1))
            (then unreachable))))
      (if (local.get $old)
        (then
          (memory.copy
            (local.get $ptr)
            (local.get $old)
            (select
              (local.get $old_size)
              (local.get $new_size)
              (i32.lt_u (local.get $old_size) (local.get $new_size))))))
      (global.set $bump (i32.wrap_i64 (local.get $end)))
      (local.get $ptr))
    (func (export "reset")
      (global.set $bump (global.get $base))))
  (core instance $libc (instantiate $Libc))
  (alias core export $libc "memory" (core memory $memory))
  (alias core export $libc "realloc" (core func $realloc))

  ;; Synchronous lower: (s_ptr, s_len, ret_area) -> (), the result string at ret_area.
  (alias export $imported "foo" (func $imported-foo))
  (core func $foo-lowered
    (canon lower (func $imported-foo) (memory $memory) (realloc $realloc) string-encoding=utf8))

  (core module $Main
    (import "libc" "memory" (memory 1))
    (import "libc" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "libc" "reset" (func $reset))
    (import "baz" "foo" (func $foo (param i32 i32 i32)))
    (global $in-flight (mut i32) (i32.const 0))
    (data (i32.const 16) " - entered guest")
    (data (i32.const 32) " - exited guest")

    ;; A fresh string holding a then b, as (ptr, len).
    (func $concat (param $a i32) (param $a_len i32) (param $b i32) (param $b_len i32)
        (result i32 i32)
      (local $out i32)
      (local $len i32)
      (local.set $len (i32.add (local.get $a_len) (local.get $b_len)))
      (if (i32.lt_u (local.get $len) (local.get $a_len)) (then unreachable))
      (local.set $out
        (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (local.get $len)))
      (memory.copy (local.get $out) (local.get $a) (local.get $a_len))
      (memory.copy
        (i32.add (local.get $out) (local.get $a_len)) (local.get $b) (local.get $b_len))
      (local.get $out)
      (local.get $len))

    ;; Synchronous lift: (s_ptr, s_len) -> pointer to the result's (ptr, len).
    (func (export "foo") (param $s i32) (param $s_len i32) (result i32)
      (local $ptr i32)
      (local $len i32)
      (local $ret i32)
      (global.set $in-flight (i32.add (global.get $in-flight) (i32.const 1)))
      (call $concat (local.get $s) (local.get $s_len) (i32.const 16) (i32.const 16))
      (local.set $len)
      (local.set $ptr)
      (local.set $ret
        (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
      (call $foo (local.get $ptr) (local.get $len) (local.get $ret))
      (call $concat
        (i32.load (local.get $ret))
        (i32.load offset=4 (local.get $ret))
        (i32.const 32)
        (i32.const 15))
      (local.set $len)
      (local.set $ptr)
      (i32.store (local.get $ret) (local.get $ptr))
      (i32.store offset=4 (local.get $ret) (local.get $len))
      (local.get $ret))

    (func (export "post-foo") (param i32)
      (global.set $in-flight (i32.sub (global.get $in-flight) (i32.const 1)))
      (if (i32.eqz (global.get $in-flight)) (then (call $reset)))))
  (core instance $main (instantiate $Main
    (with "libc" (instance $libc))
    (with "baz" (instance (export "foo" (func $foo-lowered))))))

  (func $foo (type $foo-type)
    (canon lift (core func $main "foo") (memory $memory) (realloc $realloc)
      string-encoding=utf8 (post-return (core func $main "post-foo"))))
  (instance $exported (export "foo" (func $foo)))
  (export "local:roundtrip/baz" (instance $exported)))
