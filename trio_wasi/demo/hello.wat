;; The component `python -m trio_wasi` runs when no file is given.
;;
;; It exports `greet: func(name: string) -> string`, which answers
;; "Hello, <name>!", and `count-bytes: func(data: list<u8>) -> u32`. It imports
;; nothing, so it runs on any host; it is small enough to read whole and shows
;; the canonical ABI at work: strings arrive through `realloc`, the result is
;; returned through a pointer to a (pointer, length) pair, and `post-return`
;; frees it.
(component
  (core module $m
    (memory (export "memory") 1)
    ;; A bump allocator: enough for a demo whose allocations are short-lived.
    (global $next (mut i32) (i32.const 1024))
    (func $realloc (export "realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $ptr i32)
      ;; round up to the requested alignment
      (local.set $ptr
        (i32.and
          (i32.add (global.get $next) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (global.set $next (i32.add (local.get $ptr) (local.get $size)))
      ;; grow memory when the bump pointer passes its end
      (block $done
        (loop $grow
          (br_if $done (i32.le_u (global.get $next) (i32.mul (memory.size) (i32.const 65536))))
          (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
          (br $grow)))
      (if (local.get $old_size)
        (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
      (local.get $ptr))
    (data (i32.const 16) "Hello, ")
    (data (i32.const 32) "!")
    ;; greet(ptr, len) -> pointer to (ptr, len)
    (func (export "greet") (param $name i32) (param $len i32) (result i32)
      (local $out i32) (local $ret i32)
      (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
        (i32.add (local.get $len) (i32.const 8))))
      (memory.copy (local.get $out) (i32.const 16) (i32.const 7))
      (memory.copy (i32.add (local.get $out) (i32.const 7)) (local.get $name) (local.get $len))
      (memory.copy (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 7))) (i32.const 32) (i32.const 1))
      (local.set $ret (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
      (i32.store (local.get $ret) (local.get $out))
      (i32.store offset=4 (local.get $ret) (i32.add (local.get $len) (i32.const 8)))
      (local.get $ret))
    ;; After the host has read the result, everything allocated is garbage.
    (func (export "greet-post-return") (param i32)
      (global.set $next (i32.const 1024)))
    (func (export "count-bytes") (param $ptr i32) (param $len i32) (result i32)
      (global.set $next (i32.const 1024))
      (local.get $len))
  )
  (core instance $i (instantiate $m))
  (func (export "greet") (param "name" string) (result string)
    (canon lift (core func $i "greet")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc"))
      (post-return (core func $i "greet-post-return"))))
  (func (export "count-bytes") (param "data" (list u8)) (result u32)
    (canon lift (core func $i "count-bytes")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
)
