;; The command `python -m trio_wasi run` runs when no file is given.
;;
;; A WASI 0.3 command: it exports `wasi:cli/run@0.3.0` and prints
;; "Hello from a WASI 0.3 component!" through `wasi:cli/stdout@0.3.0`. The
;; output is a `stream<u8>`: `run` makes a stream, hands its readable end to
;; `write-via-stream`, writes the text into the writable end (a synchronous
;; write waits until the host has taken it), then drops its ends.
(component
  (import "wasi:cli/types@0.3.0" (instance $types
    (type $e (enum "io" "illegal-byte-sequence" "pipe"))
    (export "error-code" (type (eq $e)))))
  (alias export $types "error-code" (type $error-code))
  (import "wasi:cli/stdout@0.3.0" (instance $stdout
    (alias outer 1 $error-code (type $e))
    (export "error-code" (type $error-code-eq (eq $e)))
    (export "write-via-stream"
      (func (param "data" (stream u8)) (result (future (result (error $error-code-eq))))))))
  (type $bytes (stream u8))
  (type $done (future (result (error $error-code))))

  ;; The memory lives in its own module so the stream built-ins can name it
  ;; before the main module is instantiated.
  (core module $memory (memory (export "memory") 1))
  (core instance $mem (instantiate $memory))

  (core module $m
    (import "host" "memory" (memory 1))
    (import "host" "write-via-stream" (func $write-via-stream (param i32) (result i32)))
    (import "host" "stream.new" (func $stream-new (result i64)))
    (import "host" "stream.write" (func $stream-write (param i32 i32 i32) (result i32)))
    (import "host" "stream.drop-writable" (func $drop-writable (param i32)))
    (import "host" "future.drop-readable" (func $drop-future (param i32)))
    (data (i32.const 16) "Hello from a WASI 0.3 component!\n")
    (func (export "run") (result i32)
      (local $ends i64) (local $writer i32) (local $future i32)
      (local.set $ends (call $stream-new))
      (local.set $writer (i32.wrap_i64 (i64.shr_u (local.get $ends) (i64.const 32))))
      ;; The host now owns the readable end; it answers with a future.
      (local.set $future (call $write-via-stream (i32.wrap_i64 (local.get $ends))))
      (drop (call $stream-write (local.get $writer) (i32.const 16) (i32.const 33)))
      (call $drop-writable (local.get $writer))
      (call $drop-future (local.get $future))
      ;; result::ok
      (i32.const 0)))

  (core func $write-via-stream (canon lower (func $stdout "write-via-stream")))
  (core func $stream-new (canon stream.new $bytes))
  (core func $stream-write (canon stream.write $bytes (memory (core memory $mem "memory"))))
  (core func $drop-writable (canon stream.drop-writable $bytes))
  (core func $drop-future (canon future.drop-readable $done))
  (core instance $host
    (export "memory" (memory $mem "memory"))
    (export "write-via-stream" (func $write-via-stream))
    (export "stream.new" (func $stream-new))
    (export "stream.write" (func $stream-write))
    (export "stream.drop-writable" (func $drop-writable))
    (export "future.drop-readable" (func $drop-future)))
  (core instance $i (instantiate $m (with "host" (instance $host))))

  (type $run-type (func async (result (result))))
  (func $run (type $run-type) (canon lift (core func $i "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $run-instance))
)
