"""Host ends of streams and futures: trio channels on the host side.

One WAT component with callback-lifted exports that read and write
``stream<u8>``, ``stream<u32>`` and ``future<u32>`` values:

- ``consume(s, bufsize)`` / ``sum32(s)``: read everything, return (count, checksum);
- ``produce(n, chunk)``: return a stream and write ``n`` bytes (byte ``k`` is ``k % 251``)
  after returning; ``written``/``saw-drop`` report what its writes saw;
- ``count32(n)``: return a stream of the u32 values ``0 .. n-1``;
- ``echo(s)``: return a stream at once and copy ``s`` into it after returning;
- ``take-one(s)``: read at most 4 bytes, drop the stream, return the count;
- ``fut-in(f)``: return the future's value plus one; ``fut-out(v)``: return a future of
  ``2 * v``, ``fut-status`` = 1 + the write's result (0 while pending);
- ``pipe(s)``: pass ``s`` through the host import ``transform`` and consume the result.

Every test runs inline and on store threads (the ``threaded`` variant adds an unused
``waitable-set.wait`` built-in, which makes the linker choose store threads).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_wasi
from trio_wasi._run._hostvalues import SPARE_ITEMS, FutureReceiver, StreamReceiver

ECHO_FIELDS = (Path(__file__).parent / "wat" / "echo_u8_fields.wat").read_text()

WAT = """
(component
  (import "transform" (func $transform_imp (param "s" (stream u8)) (result (stream u8))))
  (core module $Mem (memory (export "mem") 6))
  (core instance $mem (instantiate $Mem))
  (type $S8 (stream u8))
  (type $S32 (stream u32))
  (type $F32 (future u32))
  (type $T2 (tuple u32 u32))
  (core module $M
    (import "" "mem" (memory 6))
    (import "" "ret_t2" (func $ret_t2 (param i32 i32)))
    (import "" "ret_u32" (func $ret_u32 (param i32)))
    (import "" "ret_s8" (func $ret_s8 (param i32)))
    (import "" "ret_s32" (func $ret_s32 (param i32)))
    (import "" "ret_f32" (func $ret_f32 (param i32)))
    (import "" "ws_new" (func $ws_new (result i32)))
    (import "" "ws_drop" (func $ws_drop (param i32)))
    (import "" "join" (func $join (param i32 i32)))
    (import "" "s8_new" (func $s8_new (result i64)))
    (import "" "s8_read" (func $s8_read (param i32 i32 i32) (result i32)))
    (import "" "s8_write" (func $s8_write (param i32 i32 i32) (result i32)))
    (import "" "s8_drop_r" (func $s8_drop_r (param i32)))
    (import "" "s8_drop_w" (func $s8_drop_w (param i32)))
    (import "" "s32_new" (func $s32_new (result i64)))
    (import "" "s32_read" (func $s32_read (param i32 i32 i32) (result i32)))
    (import "" "s32_write" (func $s32_write (param i32 i32 i32) (result i32)))
    (import "" "s32_drop_r" (func $s32_drop_r (param i32)))
    (import "" "s32_drop_w" (func $s32_drop_w (param i32)))
    (import "" "f32_new" (func $f32_new (result i64)))
    (import "" "f32_read" (func $f32_read (param i32 i32) (result i32)))
    (import "" "f32_write" (func $f32_write (param i32 i32) (result i32)))
    (import "" "f32_drop_r" (func $f32_drop_r (param i32)))
    (import "" "f32_drop_w" (func $f32_drop_w (param i32)))
    (import "" "transform" (func $transform (param i32) (result i32)))
    ;;BLOCKING_IMPORT

    ;; consume / sum32: read into 0x10000 until DROPPED
    (global $c_in (mut i32) (i32.const 0))
    (global $c_bs (mut i32) (i32.const 0))
    (global $c_esz (mut i32) (i32.const 1))
    (global $c_ws (mut i32) (i32.const 0))
    (global $c_count (mut i32) (i32.const 0))
    (global $c_sum (mut i32) (i32.const 0))
    (func $c_start (param $s i32) (param $bs i32) (param $esz i32) (result i32)
      (global.set $c_in (local.get $s))
      (global.set $c_bs (local.get $bs))
      (global.set $c_esz (local.get $esz))
      (global.set $c_count (i32.const 0))
      (global.set $c_sum (i32.const 0))
      (global.set $c_ws (call $ws_new))
      (call $join (local.get $s) (global.get $c_ws))
      (call $c_loop))
    (func (export "consume") (param $s i32) (param $bs i32) (result i32)
      (call $c_start (local.get $s) (local.get $bs) (i32.const 1)))
    (func (export "sum32") (param $s i32) (result i32)
      (call $c_start (local.get $s) (i32.const 8) (i32.const 4)))
    (func (export "pipe") (param $s i32) (result i32)
      (call $c_start (call $transform (local.get $s)) (i32.const 4096) (i32.const 1)))
    (func $c_loop (result i32)
      (local $ret i32)
      (loop $l
        (if (i32.eq (global.get $c_esz) (i32.const 1))
          (then (local.set $ret
            (call $s8_read (global.get $c_in) (i32.const 0x10000) (global.get $c_bs))))
          (else (local.set $ret
            (call $s32_read (global.get $c_in) (i32.const 0x10000) (global.get $c_bs)))))
        (if (i32.eq (local.get $ret) (i32.const -1))
          (then (return (i32.or (i32.const 2) (i32.shl (global.get $c_ws) (i32.const 4))))))
        (if (call $c_got (local.get $ret)) (then (return (i32.const 0))))
        (br $l))
      unreachable)
    (func $c_got (param $ret i32) (result i32)
      (local $n i32) (local $i i32)
      (local.set $n (i32.shr_u (local.get $ret) (i32.const 4)))
      (local.set $i (i32.const 0))
      (block $done (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.eq (global.get $c_esz) (i32.const 1))
          (then (global.set $c_sum (i32.add (global.get $c_sum)
            (i32.load8_u (i32.add (i32.const 0x10000) (local.get $i))))))
          (else (global.set $c_sum (i32.add (global.get $c_sum)
            (i32.load (i32.add (i32.const 0x10000) (i32.shl (local.get $i) (i32.const 2))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (global.set $c_count (i32.add (global.get $c_count) (local.get $n)))
      (if (i32.eq (i32.and (local.get $ret) (i32.const 0xf)) (i32.const 1))
        (then
          (if (i32.eq (global.get $c_esz) (i32.const 1))
            (then (call $s8_drop_r (global.get $c_in)))
            (else (call $s32_drop_r (global.get $c_in))))
          (call $ws_drop (global.get $c_ws))
          (call $ret_t2 (global.get $c_count) (global.get $c_sum))
          (return (i32.const 1))))
      (i32.const 0))
    (func (export "consume_cb") (param $ev i32) (param $idx i32) (param $p i32) (result i32)
      (if (i32.ne (local.get $ev) (i32.const 2)) (then unreachable))
      (if (call $c_got (local.get $p)) (then (return (i32.const 0))))
      (call $c_loop))

    ;; produce: write n bytes of the pattern at 0x20000 (byte k is k % 251)
    (global $p_w (mut i32) (i32.const 0))
    (global $p_left (mut i32) (i32.const 0))
    (global $p_pos (mut i32) (i32.const 0))
    (global $p_chunk (mut i32) (i32.const 0))
    (global $p_ws (mut i32) (i32.const 0))
    (global $p_written (mut i32) (i32.const 0))
    (global $p_drop (mut i32) (i32.const 0))
    (func (export "produce") (param $n i32) (param $chunk i32) (result i32)
      (local $i i32) (local $r64 i64)
      (block $d (loop $l
        (br_if $d (i32.ge_u (local.get $i) (i32.const 65792)))
        (i32.store8 (i32.add (i32.const 0x20000) (local.get $i))
          (i32.rem_u (local.get $i) (i32.const 251)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (local.set $r64 (call $s8_new))
      (global.set $p_w (i32.wrap_i64 (i64.shr_u (local.get $r64) (i64.const 32))))
      (global.set $p_left (local.get $n))
      (global.set $p_pos (i32.const 0))
      (global.set $p_chunk (local.get $chunk))
      (global.set $p_written (i32.const 0))
      (global.set $p_drop (i32.const 0))
      (call $ret_s8 (i32.wrap_i64 (local.get $r64)))
      (global.set $p_ws (call $ws_new))
      (call $join (global.get $p_w) (global.get $p_ws))
      (call $p_loop))
    (func $p_loop (result i32)
      (local $len i32) (local $ret i32)
      (loop $l
        (if (i32.eqz (global.get $p_left))
          (then
            (call $s8_drop_w (global.get $p_w))
            (call $ws_drop (global.get $p_ws))
            (return (i32.const 0))))
        (local.set $len (select (global.get $p_left) (global.get $p_chunk)
          (i32.lt_u (global.get $p_left) (global.get $p_chunk))))
        (local.set $ret (call $s8_write (global.get $p_w)
          (i32.add (i32.const 0x20000) (i32.rem_u (global.get $p_pos) (i32.const 251)))
          (local.get $len)))
        (if (i32.eq (local.get $ret) (i32.const -1))
          (then (return (i32.or (i32.const 2) (i32.shl (global.get $p_ws) (i32.const 4))))))
        (if (call $p_done (local.get $ret)) (then (return (i32.const 0))))
        (br $l))
      unreachable)
    (func $p_done (param $ret i32) (result i32)
      (local $n i32)
      (local.set $n (i32.shr_u (local.get $ret) (i32.const 4)))
      (global.set $p_pos (i32.add (global.get $p_pos) (local.get $n)))
      (global.set $p_left (i32.sub (global.get $p_left) (local.get $n)))
      (global.set $p_written (i32.add (global.get $p_written) (local.get $n)))
      (if (i32.eq (i32.and (local.get $ret) (i32.const 0xf)) (i32.const 1))
        (then
          (global.set $p_drop (i32.const 1))
          (call $s8_drop_w (global.get $p_w))
          (call $ws_drop (global.get $p_ws))
          (return (i32.const 1))))
      (i32.const 0))
    (func (export "produce_cb") (param $ev i32) (param $idx i32) (param $p i32) (result i32)
      (if (i32.ne (local.get $ev) (i32.const 3)) (then unreachable))
      (if (call $p_done (local.get $p)) (then (return (i32.const 0))))
      (call $p_loop))
    (func (export "written") (result i32) (global.get $p_written))
    (func (export "saw-drop") (result i32) (global.get $p_drop))

    ;; count32: write the u32 values 0 .. n-1, at most 3 per write, from 0x50000
    (global $k_w (mut i32) (i32.const 0))
    (global $k_left (mut i32) (i32.const 0))
    (global $k_next (mut i32) (i32.const 0))
    (global $k_ws (mut i32) (i32.const 0))
    (func (export "count32") (param $n i32) (result i32)
      (local $r64 i64)
      (local.set $r64 (call $s32_new))
      (global.set $k_w (i32.wrap_i64 (i64.shr_u (local.get $r64) (i64.const 32))))
      (global.set $k_left (local.get $n))
      (global.set $k_next (i32.const 0))
      (call $ret_s32 (i32.wrap_i64 (local.get $r64)))
      (global.set $k_ws (call $ws_new))
      (call $join (global.get $k_w) (global.get $k_ws))
      (call $k_loop))
    (func $k_loop (result i32)
      (local $len i32) (local $ret i32) (local $i i32)
      (loop $l
        (if (i32.eqz (global.get $k_left))
          (then
            (call $s32_drop_w (global.get $k_w))
            (call $ws_drop (global.get $k_ws))
            (return (i32.const 0))))
        (local.set $len (select (global.get $k_left) (i32.const 3)
          (i32.lt_u (global.get $k_left) (i32.const 3))))
        (local.set $i (i32.const 0))
        (block $d (loop $f
          (br_if $d (i32.ge_u (local.get $i) (local.get $len)))
          (i32.store (i32.add (i32.const 0x50000) (i32.shl (local.get $i) (i32.const 2)))
            (i32.add (global.get $k_next) (local.get $i)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $f)))
        (local.set $ret (call $s32_write (global.get $k_w) (i32.const 0x50000) (local.get $len)))
        (if (i32.eq (local.get $ret) (i32.const -1))
          (then (return (i32.or (i32.const 2) (i32.shl (global.get $k_ws) (i32.const 4))))))
        (if (call $k_done (local.get $ret)) (then (return (i32.const 0))))
        (br $l))
      unreachable)
    (func $k_done (param $ret i32) (result i32)
      (local $n i32)
      (local.set $n (i32.shr_u (local.get $ret) (i32.const 4)))
      (global.set $k_next (i32.add (global.get $k_next) (local.get $n)))
      (global.set $k_left (i32.sub (global.get $k_left) (local.get $n)))
      (if (i32.eq (i32.and (local.get $ret) (i32.const 0xf)) (i32.const 1))
        (then
          (call $s32_drop_w (global.get $k_w))
          (call $ws_drop (global.get $k_ws))
          (return (i32.const 1))))
      (i32.const 0))
    (func (export "count32_cb") (param $ev i32) (param $idx i32) (param $p i32) (result i32)
      (if (i32.ne (local.get $ev) (i32.const 3)) (then unreachable))
      (if (call $k_done (local.get $p)) (then (return (i32.const 0))))
      (call $k_loop))

    ;; echo: copy the input stream into a new stream (tests/wat/echo_u8_fields.wat)
    ;;ECHO_FIELDS

    ;; take-one: read at most 4 bytes, drop the stream
    (global $t_in (mut i32) (i32.const 0))
    (func (export "take-one") (param $s i32) (result i32)
      (local $ret i32) (local $ws i32)
      (global.set $t_in (local.get $s))
      (local.set $ret (call $s8_read (local.get $s) (i32.const 0x200) (i32.const 4)))
      (if (i32.eq (local.get $ret) (i32.const -1))
        (then
          (local.set $ws (call $ws_new))
          (call $join (local.get $s) (local.get $ws))
          (return (i32.or (i32.const 2) (i32.shl (local.get $ws) (i32.const 4))))))
      (call $t_fin (local.get $ret)))
    (func $t_fin (param $ret i32) (result i32)
      (call $s8_drop_r (global.get $t_in))
      (call $ret_u32 (i32.shr_u (local.get $ret) (i32.const 4)))
      (i32.const 0))
    (func (export "take-one_cb") (param $ev i32) (param $idx i32) (param $p i32) (result i32)
      (call $t_fin (local.get $p)))

    ;; fut-in: value + 1; fut-out: a future of 2 * v
    (global $fi_in (mut i32) (i32.const 0))
    (func (export "fut-in") (param $f i32) (result i32)
      (local $ret i32) (local $ws i32)
      (global.set $fi_in (local.get $f))
      (local.set $ret (call $f32_read (local.get $f) (i32.const 0x100)))
      (if (i32.eq (local.get $ret) (i32.const -1))
        (then
          (local.set $ws (call $ws_new))
          (call $join (local.get $f) (local.get $ws))
          (return (i32.or (i32.const 2) (i32.shl (local.get $ws) (i32.const 4))))))
      (call $fi_fin (local.get $ret)))
    (func $fi_fin (param $ret i32) (result i32)
      (if (i32.ne (local.get $ret) (i32.const 0)) (then unreachable))
      (call $f32_drop_r (global.get $fi_in))
      (call $ret_u32 (i32.add (i32.load (i32.const 0x100)) (i32.const 1)))
      (i32.const 0))
    (func (export "fut-in_cb") (param $ev i32) (param $idx i32) (param $p i32) (result i32)
      (call $fi_fin (local.get $p)))
    (global $fo_w (mut i32) (i32.const 0))
    (global $fo_status (mut i32) (i32.const 0))
    (func (export "fut-out") (param $v i32) (result i32)
      (local $r64 i64) (local $ret i32) (local $ws i32)
      (local.set $r64 (call $f32_new))
      (global.set $fo_w (i32.wrap_i64 (i64.shr_u (local.get $r64) (i64.const 32))))
      (global.set $fo_status (i32.const 0))
      (call $ret_f32 (i32.wrap_i64 (local.get $r64)))
      (i32.store (i32.const 0x104) (i32.mul (local.get $v) (i32.const 2)))
      (local.set $ret (call $f32_write (global.get $fo_w) (i32.const 0x104)))
      (if (i32.eq (local.get $ret) (i32.const -1))
        (then
          (local.set $ws (call $ws_new))
          (call $join (global.get $fo_w) (local.get $ws))
          (return (i32.or (i32.const 2) (i32.shl (local.get $ws) (i32.const 4))))))
      (call $fo_fin (local.get $ret)))
    (func $fo_fin (param $ret i32) (result i32)
      (global.set $fo_status (i32.add (local.get $ret) (i32.const 1)))
      (call $f32_drop_w (global.get $fo_w))
      (i32.const 0))
    (func (export "fut-out_cb") (param $ev i32) (param $idx i32) (param $p i32) (result i32)
      (call $fo_fin (local.get $p)))
    (func (export "fut-status") (result i32) (global.get $fo_status))
  )
  (core func $ret_t2 (canon task.return (result $T2)))
  (core func $ret_u32 (canon task.return (result u32)))
  (core func $ret_s8 (canon task.return (result $S8)))
  (core func $ret_s32 (canon task.return (result $S32)))
  (core func $ret_f32 (canon task.return (result $F32)))
  (core func $ws_new (canon waitable-set.new))
  (core func $ws_drop (canon waitable-set.drop))
  (core func $join (canon waitable.join))
  (core func $s8_new (canon stream.new $S8))
  (core func $s8_read (canon stream.read $S8 async (memory (core memory $mem "mem"))))
  (core func $s8_write (canon stream.write $S8 async (memory (core memory $mem "mem"))))
  (core func $s8_drop_r (canon stream.drop-readable $S8))
  (core func $s8_drop_w (canon stream.drop-writable $S8))
  (core func $s32_new (canon stream.new $S32))
  (core func $s32_read (canon stream.read $S32 async (memory (core memory $mem "mem"))))
  (core func $s32_write (canon stream.write $S32 async (memory (core memory $mem "mem"))))
  (core func $s32_drop_r (canon stream.drop-readable $S32))
  (core func $s32_drop_w (canon stream.drop-writable $S32))
  (core func $f32_new (canon future.new $F32))
  (core func $f32_read (canon future.read $F32 async (memory (core memory $mem "mem"))))
  (core func $f32_write (canon future.write $F32 async (memory (core memory $mem "mem"))))
  (core func $f32_drop_r (canon future.drop-readable $F32))
  (core func $f32_drop_w (canon future.drop-writable $F32))
  (core func $transform (canon lower (func $transform_imp)))
  ;;BLOCKING_CANON
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $mem "mem"))
    (export "ret_t2" (func $ret_t2))
    (export "ret_u32" (func $ret_u32))
    (export "ret_s8" (func $ret_s8))
    (export "ret_s32" (func $ret_s32))
    (export "ret_f32" (func $ret_f32))
    (export "ws_new" (func $ws_new))
    (export "ws_drop" (func $ws_drop))
    (export "join" (func $join))
    (export "s8_new" (func $s8_new))
    (export "s8_read" (func $s8_read))
    (export "s8_write" (func $s8_write))
    (export "s8_drop_r" (func $s8_drop_r))
    (export "s8_drop_w" (func $s8_drop_w))
    (export "s32_new" (func $s32_new))
    (export "s32_read" (func $s32_read))
    (export "s32_write" (func $s32_write))
    (export "s32_drop_r" (func $s32_drop_r))
    (export "s32_drop_w" (func $s32_drop_w))
    (export "f32_new" (func $f32_new))
    (export "f32_read" (func $f32_read))
    (export "f32_write" (func $f32_write))
    (export "f32_drop_r" (func $f32_drop_r))
    (export "f32_drop_w" (func $f32_drop_w))
    (export "transform" (func $transform))
    ;;BLOCKING_EXPORT
  ))))
  (func (export "consume") async (param "s" (stream u8)) (param "bufsize" u32) (result $T2)
    (canon lift (core func $m "consume") async (memory (core memory $mem "mem"))
      (callback (core func $m "consume_cb"))))
  (func (export "sum32") async (param "s" (stream u32)) (result $T2)
    (canon lift (core func $m "sum32") async (memory (core memory $mem "mem"))
      (callback (core func $m "consume_cb"))))
  (func (export "pipe") async (param "s" (stream u8)) (result $T2)
    (canon lift (core func $m "pipe") async (memory (core memory $mem "mem"))
      (callback (core func $m "consume_cb"))))
  (func (export "produce") async (param "n" u32) (param "chunk" u32) (result (stream u8))
    (canon lift (core func $m "produce") async (memory (core memory $mem "mem"))
      (callback (core func $m "produce_cb"))))
  (func (export "written") (result u32) (canon lift (core func $m "written")))
  (func (export "saw-drop") (result u32) (canon lift (core func $m "saw-drop")))
  (func (export "count32") async (param "n" u32) (result (stream u32))
    (canon lift (core func $m "count32") async (memory (core memory $mem "mem"))
      (callback (core func $m "count32_cb"))))
  (func (export "echo") async (param "s" (stream u8)) (result (stream u8))
    (canon lift (core func $m "echo") async (memory (core memory $mem "mem"))
      (callback (core func $m "echo_cb"))))
  (func (export "take-one") async (param "s" (stream u8)) (result u32)
    (canon lift (core func $m "take-one") async (memory (core memory $mem "mem"))
      (callback (core func $m "take-one_cb"))))
  (func (export "fut-in") async (param "f" (future u32)) (result u32)
    (canon lift (core func $m "fut-in") async (memory (core memory $mem "mem"))
      (callback (core func $m "fut-in_cb"))))
  (func (export "fut-out") async (param "v" u32) (result (future u32))
    (canon lift (core func $m "fut-out") async (memory (core memory $mem "mem"))
      (callback (core func $m "fut-out_cb"))))
  (func (export "fut-status") (result u32) (canon lift (core func $m "fut-status")))
)
""".replace(";;ECHO_FIELDS", ECHO_FIELDS)

# An unused waitable-set.wait makes the linker run the component on store threads.
THREADED_WAT = (
    WAT.replace(
        ";;BLOCKING_IMPORT",
        '(import "" "ws_wait" (func $ws_wait (param i32 i32) (result i32)))',
    )
    .replace(
        ";;BLOCKING_CANON",
        '(core func $ws_wait (canon waitable-set.wait (memory (core memory $mem "mem"))))',
    )
    .replace(";;BLOCKING_EXPORT", '(export "ws_wait" (func $ws_wait))')
)


def pattern(n: int, start: int = 0) -> bytes:
    """The bytes ``produce`` writes: byte ``k`` is ``k % 251``."""
    block = bytes(range(251))
    first = start % 251
    out = (block * (n // 251 + 2))[first : first + n]
    assert len(out) == n
    return out


@pytest.fixture(scope="module")
def engine() -> Any:
    return trio_wasi.Engine()


@pytest.fixture(scope="module")
def components(engine: Any) -> dict[str, Any]:
    return {
        "inline": trio_wasi.Component.from_wat(WAT, engine=engine),
        "threaded": trio_wasi.Component.from_wat(THREADED_WAT, engine=engine),
    }


@pytest.fixture(params=["inline", "threaded"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


Transform = Callable[[Any], Any]


@pytest.fixture
def open_instance(engine: Any, components: dict[str, Any], mode: str) -> Callable[..., Any]:
    """``async with open_instance() as inst``, in the test's mode."""

    def open_(transform: Transform | None = None, limits: Any = None) -> Any:
        linker = trio_wasi.Linker(engine)
        linker.define_function(None, "transform", transform or (lambda s: s))
        return _Opened(linker, components[mode], mode, limits)

    return open_


class _Opened:
    def __init__(self, linker: Any, component: Any, mode: str, limits: Any) -> None:
        self._cm = linker.instantiate(component, limits=limits)
        self._mode = mode

    async def __aenter__(self) -> Any:
        inst = await self._cm.__aenter__()
        assert inst.threaded == (self._mode == "threaded")
        return inst

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._cm.__aexit__(*exc)


# A stream buffer bound of exactly one 64 KiB read (serve's default is smaller
# still; the embedding default allows four).
ONE_READ = trio_wasi.Limits(max_stream_buffer=64 * 1024)


async def receive_all(receiver: Any) -> bytes:
    chunks = [chunk async for chunk in receiver]
    assert all(isinstance(c, bytes) for c in chunks)
    return b"".join(chunks)


async def poll(get: Callable[[], Awaitable[Any]], want: Any) -> Any:
    """Call ``get`` until it returns ``want`` (guest work after returning is asynchronous)."""
    with trio.fail_after(5):
        while True:
            value = await get()
            if value == want:
                return value
            await trio.sleep(0.001)


def checksum(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


# ---------------------------------------------------------------------------
# host -> guest


@pytest.mark.parametrize("bufsize", [1, 7, 4096, 65536])
async def test_host_bytes_reach_the_guest_then_dropped(
    open_instance: Callable[..., Any], bufsize: int
) -> None:
    chunks: list[bytes | bytearray] = [
        b"hello",
        b"",
        b"x" * 10_000,
        bytes(range(256)),
        bytearray(b"tail"),
    ]
    data = b"".join(chunks)
    send, recv = trio.open_memory_channel[Any](len(chunks))
    for chunk in chunks:
        send.send_nowait(chunk)
    await send.aclose()  # everything sent before the close still arrives
    async with open_instance() as inst:
        assert await inst.call("consume", recv, bufsize) == (len(data), checksum(data))


async def test_guest_waits_for_a_slow_host_sender(open_instance: Callable[..., Any]) -> None:
    send, recv = trio.open_memory_channel[bytes](0)
    sent = bytearray()

    async def sender() -> None:
        async with send:
            for i in range(50):
                chunk = bytes([i]) * (i * 37 + 1)
                await send.send(chunk)
                sent.extend(chunk)
                if i % 7 == 0:
                    await trio.sleep(0.001)

    async with open_instance() as inst, trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        result = await inst.call("consume", recv, 100)
    assert result == (len(sent), checksum(bytes(sent)))


async def test_guest_drop_closes_the_host_channel(open_instance: Callable[..., Any]) -> None:
    send, recv = trio.open_memory_channel[bytes](4)
    send.send_nowait(b"abcdefgh")
    async with open_instance() as inst:
        assert await inst.call("take-one", recv) == 4
        with trio.fail_after(5):
            while True:
                try:
                    send.send_nowait(b"more")
                except trio.WouldBlock:
                    await trio.sleep(0.001)
                    continue
                except trio.BrokenResourceError:
                    break
                await trio.sleep(0.001)


async def test_a_stream_that_is_not_a_channel_is_refused(
    open_instance: Callable[..., Any],
) -> None:
    async with open_instance() as inst:
        with pytest.raises(TypeError, match="ReceiveChannel"):
            await inst.call("consume", b"not a channel", 16)


# ---------------------------------------------------------------------------
# guest -> host


@pytest.mark.parametrize(("n", "chunk"), [(0, 10), (1, 1), (100_000, 1000), (200_000, 65536)])
async def test_guest_bytes_reach_the_host(
    open_instance: Callable[..., Any], n: int, chunk: int
) -> None:
    async with open_instance() as inst:
        receiver = await inst.call("produce", n, chunk)
        assert isinstance(receiver, StreamReceiver)
        assert isinstance(receiver, trio.abc.ReceiveChannel)
        assert await receive_all(receiver) == pattern(n)
        with pytest.raises(trio.EndOfChannel):
            await receiver.receive()
        assert await inst.call("saw-drop") == 0


async def test_host_aclose_is_seen_as_dropped(open_instance: Callable[..., Any], mode: str) -> None:
    async with open_instance() as inst:
        receiver = await inst.call("produce", 1_000_000, 4096)
        first = await receiver.receive()
        assert first == pattern(len(first))
        await receiver.aclose()
        await poll(lambda: inst.call("saw-drop"), 1)
        # Only what the host received was taken from the guest, and on a
        # store thread the writes that completed into the reads posted
        # behind it (discarded with the end, as a reader's data is): a read
        # of 64 KiB capacity is posted while what was taken ahead plus that
        # capacity stays within the default max_stream_buffer, and each
        # takes one 4 KiB write.
        bound = trio_wasi.Limits().max_stream_buffer
        assert bound is not None
        ahead = ((bound - 64 * 1024) // 4096 + 1) * 4096 if mode == "threaded" else 0
        assert await inst.call("written") == len(first) + ahead
        with pytest.raises(trio.ClosedResourceError):
            await receiver.receive()


async def test_lookahead_tells_the_end_with_the_last_chunk(
    open_instance: Callable[..., Any],
) -> None:
    async with open_instance() as inst:
        receiver = await inst.call("produce", 100, 100)
        receiver.lookahead = True
        assert await receiver.receive() == pattern(100)
        # The guest dropped its writer right after its one write; the read
        # that took the write looked once more and saw the drop.
        with pytest.raises(trio.EndOfChannel):
            receiver.receive_nowait()
        assert await inst.call("saw-drop") == 0


async def test_lookahead_holds_at_most_one_chunk_more(open_instance: Callable[..., Any]) -> None:
    async with open_instance() as inst:
        receiver = await inst.call("produce", 400, 100)
        receiver.lookahead = True
        assert await receiver.receive() == pattern(100)
        # The look-ahead took the second write, and nothing read the third.
        assert await inst.call("written") == 200
        assert receiver.receive_nowait() == pattern(100, 100)
        with pytest.raises(trio.WouldBlock):
            receiver.receive_nowait()
        assert await receive_all(receiver) == pattern(200, 200)


async def test_read_ahead_takes_the_guests_writes_on_the_store_thread(
    open_instance: Callable[..., Any], mode: str
) -> None:
    async with open_instance() as inst:
        receiver = await inst.call("produce", 100, 100)
        receiver.lookahead = True
        receiver.read_ahead()
        if mode == "inline":
            # Inline a read costs no hand-over: read_ahead leaves it to receive.
            assert await inst.call("written") == 0
            with pytest.raises(trio.WouldBlock):
                receiver.receive_nowait()
        else:

            async def buffered() -> Any:
                await trio.sleep(0)
                try:
                    return receiver.receive_nowait()
                except trio.WouldBlock:
                    return None

            # Nothing asked for the chunk: the store thread took it, and
            # the look-ahead behind it saw the writer's drop.
            assert await poll(buffered, pattern(100)) == pattern(100)
            with pytest.raises(trio.EndOfChannel):
                receiver.receive_nowait()
        assert await receive_all(receiver) == (b"" if mode == "threaded" else pattern(100))


async def test_store_thread_reads_ahead_exactly_one_buffer_when_the_bound_is_one_read(
    open_instance: Callable[..., Any], mode: str
) -> None:
    async with open_instance(limits=ONE_READ) as inst:
        receiver = await inst.call("produce", 100_000, 4096)
        assert await receiver.receive() == pattern(4096)
        if mode == "inline":
            # Inline a read costs no hand-over: nothing is read ahead.
            assert await inst.call("written") == 4096
            with pytest.raises(trio.WouldBlock):
                receiver.receive_nowait()
        else:
            # The store thread posted the next read the moment the one the
            # receive waited for completed: the guest's second write went
            # into it. Another read could take up to 64 KiB more, past the
            # buffer bound (64 KiB held unasked), so none follows.
            await poll(lambda: inst.call("written"), 8192)
            for _ in range(5):
                await trio.sleep(0)
                assert await inst.call("written") == 8192
            assert await poll(lambda: _nowait(receiver), pattern(4096, 4096))
            with pytest.raises(trio.WouldBlock):
                receiver.receive_nowait()
        rest = 100_000 - (4096 if mode == "inline" else 8192)
        start = 100_000 - rest
        assert await receive_all(receiver) == pattern(rest, start)
        assert await inst.call("saw-drop") == 0


async def _nowait(receiver: Any) -> Any:
    await trio.sleep(0)
    try:
        return receiver.receive_nowait()
    except trio.WouldBlock:
        return None


async def test_read_ahead_stays_within_the_stream_buffer_limit() -> None:
    component = trio_wasi.Component.from_wat(THREADED_WAT, engine=trio_wasi.Engine())
    linker = trio_wasi.Linker()
    linker.define_function(None, "transform", lambda s: s)
    limits = trio_wasi.Limits(max_stream_buffer=1000)
    async with linker.instantiate(component, limits=limits) as inst:
        assert inst.threaded
        receiver = await inst.call("produce", 100_000, 4096)
        first = await receiver.receive()
        assert first == pattern(1000)
        # The read behind it holds at most the buffer bound: it took 1000
        # bytes of the guest's write (the guest sees a partial write).
        await poll(lambda: inst.call("written"), 2000)
        assert await poll(lambda: _nowait(receiver), pattern(1000, 1000))
        for _ in range(5):
            await trio.sleep(0)
            assert await inst.call("written") == 2000
        sizes = [len(first), 1000]
        async for chunk in receiver:
            assert chunk == pattern(len(chunk), sum(sizes))
            sizes.append(len(chunk))
        assert max(sizes) <= 1000
        assert sum(sizes) == 100_000


async def test_store_thread_reads_ahead_up_to_the_stream_buffer_exactly() -> None:
    component = trio_wasi.Component.from_wat(THREADED_WAT, engine=trio_wasi.Engine())
    linker = trio_wasi.Linker()
    linker.define_function(None, "transform", lambda s: s)
    capacity = 64 * 1024
    limits = trio_wasi.Limits(max_stream_buffer=3 * capacity)
    async with linker.instantiate(component, limits=limits) as inst:
        assert inst.threaded
        receiver = await inst.call("produce", 1_000_000, 4096)
        assert receiver.capacity == capacity
        assert await receiver.receive() == pattern(4096)
        # Reads follow one another while what they took unasked, plus the
        # next read's capacity, stays within the bound: 33 reads of one
        # 4096-byte write each (33 * 4096 + 64 KiB <= 192 KiB < 34 * 4096 +
        # 64 KiB), behind the one the receive waited for.
        ahead = (3 * capacity - capacity) // 4096 + 1
        assert ahead == 33
        await poll(lambda: inst.call("written"), 4096 * (1 + ahead))
        for _ in range(5):
            await trio.sleep(0)
            assert await inst.call("written") == 4096 * (1 + ahead)
        # Taking one read's values makes room for exactly one more read.
        assert await poll(lambda: _nowait(receiver), pattern(4096, 4096))
        await poll(lambda: inst.call("written"), 4096 * (2 + ahead))
        for _ in range(5):
            await trio.sleep(0)
            assert await inst.call("written") == 4096 * (2 + ahead)
        assert await receive_all(receiver) == pattern(1_000_000 - 8192, 8192)
        assert await inst.call("saw-drop") == 0


async def test_the_read_behind_a_completed_one_is_there_before_the_writers_next_step(
    open_instance: Callable[..., Any], mode: str
) -> None:
    # The receive's read completes the guest's parked first write, which
    # wakes the guest task for one callback step. On a store thread the read
    # that follows is started at once, before that step runs, so the step's
    # second write completes into it instead of parking (which would cost
    # the task a second step); its third write parks: the bound (64 KiB held
    # unasked, the next read's capacity included) allows no third read.
    # Inline nothing is read ahead: the second write parks.
    async with open_instance(limits=ONE_READ) as inst:
        receiver = await inst.call("produce", 100_000, 4096)
        steps = receiver.rt.steps
        assert await receiver.receive() == pattern(4096)
        written = 8192 if mode == "threaded" else 4096
        await poll(lambda: inst.call("written"), written)
        for _ in range(3):
            # Export calls queue behind whatever the store still had to run.
            assert await inst.call("written") == written
        assert receiver.rt.steps - steps == 1
        assert await receive_all(receiver) == pattern(100_000 - 4096, 4096)


async def test_reads_that_complete_on_arrival_follow_one_another_without_recursion() -> None:
    # With 4-byte receives and the default bound (256 KiB), the reads behind the
    # one the receive waited for meet the rest of the guest's parked
    # 4096-byte write and complete on arrival: 1023 reads in a row start one
    # another on the store thread (from a loop, not nested calls). The
    # guest's later writes each complete 4 bytes into a read parked ahead of
    # it. All 16 KiB fit within the bound, so everything is taken unasked,
    # in order.
    component = trio_wasi.Component.from_wat(THREADED_WAT, engine=trio_wasi.Engine())
    linker = trio_wasi.Linker()
    linker.define_function(None, "transform", lambda s: s)
    async with linker.instantiate(component) as inst:
        assert inst.threaded
        receiver = await inst.call("produce", 16_384, 4096)
        receiver.capacity = 4
        got = bytearray(await receiver.receive())
        assert got == pattern(4)
        await poll(lambda: inst.call("written"), 16_384)
        assert receiver._ahead_copied == 16_384 - 4
        async for chunk in receiver:
            assert len(chunk) <= 4
            assert receiver._ahead_copied - receiver._ahead_taken <= receiver.ahead_bound
            got.extend(chunk)
        assert bytes(got) == pattern(16_384)
        assert await inst.call("saw-drop") == 0


async def test_receives_made_at_once_each_get_a_chunk(
    open_instance: Callable[..., Any],
) -> None:
    # Three tasks receive from one stream at the same time: they wait for the
    # same read, and none of them is left waiting once it completes.
    async with open_instance() as inst:
        receiver = await inst.call("produce", 48, 16)
        got: list[bytes] = []

        async def receive_one() -> None:
            got.append(await receiver.receive())

        with trio.fail_after(10):  # a hang guard only
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(receive_one)
        assert sorted(got) == [pattern(16), pattern(16, 16), pattern(16, 32)]
        with pytest.raises(trio.EndOfChannel):
            await receiver.receive()


async def test_host_items_fetched_ahead_are_bounded_exactly(
    open_instance: Callable[..., Any], mode: str
) -> None:
    # Unbuffered channel: a send returns only once the guest's side took
    # the item, so which sends returned says what was taken from the host.
    send, recv = trio.open_memory_channel[bytes](0)
    outcome: dict[bytes, str] = {}

    async def sender(item: bytes) -> None:
        try:
            await send.send(item)
            outcome[item] = "taken"
        except trio.BrokenResourceError:
            outcome[item] = "refused"

    items = [bytes([97 + i]) * 8 for i in range(SPARE_ITEMS + 2)]
    async with open_instance() as inst, trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(sender, item)
            await trio.testing.wait_all_tasks_blocked()
        # The guest reads 4 bytes of the first item and drops the stream.
        assert await inst.call("take-one", recv) == 4
    # On a store thread the read that waited for the first item brought
    # SPARE_ITEMS more along (the guest's next reads would not have
    # waited); never more. Inline only the first was taken.
    taken = 1 + SPARE_ITEMS if mode == "threaded" else 1
    assert outcome == {item: "taken" if i < taken else "refused" for i, item in enumerate(items)}


async def test_a_spare_item_is_read_by_the_guest_in_order(
    open_instance: Callable[..., Any],
) -> None:
    # Items taken ahead (on store threads) reach the guest in order, after
    # the rest of the item before them, whatever the guest's buffer size.
    send, recv = trio.open_memory_channel[bytes](0)
    items = [bytes([i]) * (i * 13 + 1) for i in range(40)]
    data = b"".join(items)

    async def sender(item: bytes) -> None:
        await send.send(item)

    async with open_instance() as inst, trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(sender, item)
            await trio.testing.wait_all_tasks_blocked()
        # Every sender waits, so each request finds a spare ready.

        async def close_when_taken() -> None:
            while send.statistics().tasks_waiting_send:
                await trio.sleep(0.001)
            await send.aclose()

        nursery.start_soon(close_when_taken)
        assert await inst.call("consume", recv, 100) == (len(data), checksum(data))


async def test_receive_if_ready_never_waits_for_the_writer(
    open_instance: Callable[..., Any],
) -> None:
    send, recv = trio.open_memory_channel[bytes](1)
    async with open_instance() as inst:
        out = await inst.call("echo", recv)
        # The guest waits to read from the host: it has written nothing.
        with pytest.raises(trio.WouldBlock):
            await out.receive_if_ready()
        with pytest.raises(trio.WouldBlock):
            out.receive_nowait()
        await send.send(b"hello")

        async def ready() -> Any:
            try:
                return await out.receive_if_ready()
            except trio.WouldBlock:
                return None

        assert await poll(ready, b"hello") == b"hello"
        await send.aclose()
        with pytest.raises(trio.EndOfChannel):
            await out.receive()
        with pytest.raises(trio.EndOfChannel):
            await out.receive_if_ready()


async def test_prefetch_lets_the_guest_write_complete(open_instance: Callable[..., Any]) -> None:
    async with open_instance() as inst:
        fut = await inst.call("fut-out", 21)
        fut.prefetch()
        # No receive: the read the prefetch started completes the guest's write.
        await poll(lambda: inst.call("fut-status"), 1)  # COMPLETED + 1
        assert fut.receive_nowait() == 42
        with pytest.raises(trio.EndOfChannel):
            fut.receive_nowait()
        await fut.aclose()


async def test_cancelled_receive_loses_nothing(open_instance: Callable[..., Any]) -> None:
    # Two kinds of cancelled receive, neither allowed to lose a byte: one
    # cancelled while certainly parked (nothing is in flight and every task is
    # blocked), which must report the cancellation; and receives with random
    # short timeouts racing the guest's copies, which exercise other
    # interleavings but assert nothing about whether the timeout fired, since
    # that is up to the clock.
    rng = random.Random(7)
    send, recv = trio.open_memory_channel[bytes](1)
    sent = bytearray()
    got = bytearray()

    async def cancel_a_parked_receive(out: Any) -> None:
        scope = trio.CancelScope()

        async def receive() -> None:
            with scope:
                got.extend(await out.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
        # All sent bytes were already received: the receive could only park.
        assert scope.cancelled_caught

    with trio.fail_after(120):  # a hang guard only
        async with open_instance() as inst:
            out = await inst.call("echo", recv)
            for i in range(200):
                if i % 3 == 0:
                    await cancel_a_parked_receive(out)
                chunk = bytes([i % 256]) * rng.randrange(1, 3000)
                send.send_nowait(chunk)
                sent.extend(chunk)
                while len(got) < len(sent):
                    with trio.move_on_after(rng.random() * 0.002):
                        got.extend(await out.receive())
                assert bytes(got) == bytes(sent)
            send.close()
            with pytest.raises(trio.EndOfChannel):
                await out.receive()
    assert bytes(got) == bytes(sent)


async def test_cancelled_receives_lose_nothing_with_a_deep_read_ahead() -> None:
    # On a store thread with room for many reads ahead (4096-byte writes, a
    # 256 KiB bound), receives cancelled at random points, and values taken
    # with receive_nowait, must neither lose nor reorder a byte, and what
    # was taken unasked never exceeds the bound.
    component = trio_wasi.Component.from_wat(THREADED_WAT, engine=trio_wasi.Engine())
    linker = trio_wasi.Linker()
    linker.define_function(None, "transform", lambda s: s)
    bound = 4 * 64 * 1024
    rng = random.Random(11)
    got = bytearray()
    with trio.fail_after(120):  # a hang guard only
        async with linker.instantiate(
            component, limits=trio_wasi.Limits(max_stream_buffer=bound)
        ) as inst:
            assert inst.threaded
            receiver = await inst.call("produce", 1_000_000, 4096)
            ended = False
            while not ended:
                assert receiver._ahead_copied - receiver._ahead_taken <= bound
                if rng.random() < 0.05:
                    # Let the store thread run ahead to the bound (the
                    # assertions hold whether or not it gets there).
                    await trio.sleep(0.002)
                if rng.random() < 0.3:
                    try:
                        got.extend(receiver.receive_nowait())
                    except trio.WouldBlock:
                        pass
                    except trio.EndOfChannel:
                        ended = True
                    continue
                with trio.move_on_after(rng.random() * 0.001):
                    try:
                        got.extend(await receiver.receive())
                    except trio.EndOfChannel:
                        ended = True
            assert await inst.call("saw-drop") == 0
    assert bytes(got) == pattern(1_000_000)


async def test_echo_round_trip(open_instance: Callable[..., Any]) -> None:
    send, recv = trio.open_memory_channel[bytes](2)
    data = bytes(random.Random(1).randbytes(300_000))

    async def sender() -> None:
        async with send:
            for i in range(0, len(data), 65536):
                await send.send(data[i : i + 65536])

    async with open_instance() as inst, trio.open_nursery() as nursery:
        # The task returned its stream at once and copies after returning.
        out = await inst.call("echo", recv)
        nursery.start_soon(sender)
        assert await receive_all(out) == data


async def test_untouched_receiver_goes_back_into_the_guest(
    open_instance: Callable[..., Any],
) -> None:
    async with open_instance() as inst:
        receiver = await inst.call("produce", 5000, 300)
        data = pattern(5000)
        assert await inst.call("consume", receiver, 512) == (5000, checksum(data))
        # The stream moved into the guest: the host's receiver is spent.
        with pytest.raises(trio.ClosedResourceError):
            await receiver.receive()


async def test_used_receiver_is_relayed_as_a_channel(open_instance: Callable[..., Any]) -> None:
    async with open_instance() as inst:
        receiver = await inst.call("produce", 5000, 300)
        first = await receiver.receive()
        rest = pattern(5000)[len(first) :]
        assert await inst.call("consume", receiver, 512) == (len(rest), checksum(rest))


# ---------------------------------------------------------------------------
# stream<u32>


async def test_u32_elements_both_ways(open_instance: Callable[..., Any]) -> None:
    send, recv = trio.open_memory_channel[int](100)
    values = [0, 1, 2**32 - 1, 12345, *range(40)]
    for v in values:
        send.send_nowait(v)
    send.close()
    async with open_instance() as inst:
        assert await inst.call("sum32", recv) == (len(values), sum(values) & 0xFFFFFFFF)
        counted = await inst.call("count32", 50)
        got = [v async for v in counted]
    assert got == list(range(50))


# ---------------------------------------------------------------------------
# futures


async def test_future_from_the_host(open_instance: Callable[..., Any]) -> None:
    send, recv = trio.open_memory_channel[int](1)
    async with open_instance() as inst, trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.sleep(0.01)
            await send.send(41)

        nursery.start_soon(later)
        assert await inst.call("fut-in", recv) == 42
    # One value per future: the channel is closed after it.
    with pytest.raises(trio.BrokenResourceError):
        send.send_nowait(1)


async def test_future_to_the_host(open_instance: Callable[..., Any]) -> None:
    async with open_instance() as inst:
        fut = await inst.call("fut-out", 21)
        assert isinstance(fut, FutureReceiver)
        assert isinstance(fut, trio.abc.ReceiveChannel)
        assert await fut.receive() == 42
        with pytest.raises(trio.EndOfChannel):
            await fut.receive()
        assert await fut.get() == 42
        await poll(lambda: inst.call("fut-status"), 1)  # COMPLETED + 1


async def test_future_dropped_by_the_host(open_instance: Callable[..., Any]) -> None:
    async with open_instance() as inst:
        fut = await inst.call("fut-out", 21)
        await fut.aclose()
        await poll(lambda: inst.call("fut-status"), 2)  # DROPPED + 1


async def test_host_future_channel_closed_without_a_value_traps(
    open_instance: Callable[..., Any],
) -> None:
    send, recv = trio.open_memory_channel[int](1)
    send.close()
    async with open_instance() as inst:
        with pytest.raises(trio_wasi.Trap, match="without a value"):
            await inst.call("fut-in", recv)


# ---------------------------------------------------------------------------
# a host import that takes and returns streams


async def test_host_import_takes_and_returns_streams(open_instance: Callable[..., Any]) -> None:
    # A plain host function runs wherever the wasm runs (a store thread when threaded).
    token = trio.lowlevel.current_trio_token()
    async with trio.open_nursery() as nursery:
        seen: list[Any] = []

        def transform(s: Any) -> Any:
            seen.append(s)
            send, recv = trio.open_memory_channel[bytes](1)

            async def upper() -> None:
                async with send, s:
                    async for chunk in s:
                        await send.send(chunk.upper())

            token.run_sync_soon(nursery.start_soon, upper)
            return recv

        data = b"hello host, " * 1000
        send, recv = trio.open_memory_channel[bytes](100)
        for i in range(0, len(data), 1000):
            send.send_nowait(data[i : i + 1000])
        send.close()
        async with open_instance(transform) as inst:
            result = await inst.call("pipe", recv)
        assert result == (len(data), checksum(data.upper()))
        assert isinstance(seen[0], trio.abc.ReceiveChannel)


# ---------------------------------------------------------------------------
# error contexts through the host hooks


def test_error_contexts_lift_to_objects_and_lower_from_objects_or_strings() -> None:
    from trio_wasi._abi._errorctx import ErrorContext
    from trio_wasi._abi._handles import InstanceState
    from trio_wasi._abi._options import CanonOptions, LiftLowerContext
    from trio_wasi._run._executor import InlineExecutor
    from trio_wasi._run._hostvalues import host_values
    from trio_wasi._run._runtime import InstanceRuntime

    hooks = host_values(InstanceRuntime(InlineExecutor()))
    cx = LiftLowerContext(CanonOptions(), InstanceState())
    i = hooks.lower_error_context(cx, "it broke")
    lifted = hooks.lift_error_context(cx, i)
    assert isinstance(lifted, ErrorContext)
    assert lifted.debug_message == "it broke"
    j = hooks.lower_error_context(cx, lifted)
    assert j != i
    assert hooks.lift_error_context(cx, j) is lifted
    with pytest.raises(TypeError):
        hooks.lower_error_context(cx, 42)


# ---------------------------------------------------------------------------
# A guest that cancels its reads of a host stream

CANCEL_WAT = """
(component
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem (instantiate $Mem))
  (type $S8 (stream u8))
  (core module $M
    (import "" "mem" (memory 1))
    (import "" "s8_read" (func $s8_read (param i32 i32 i32) (result i32)))
    (import "" "s8_cancel_r" (func $s8_cancel_r (param i32) (result i32)))
    (import "" "s8_drop_r" (func $s8_drop_r (param i32)))
    (global $s (mut i32) (i32.const 0))
    (func (export "hold") (param i32) (global.set $s (local.get 0)))
    (func (export "read") (result i32)
      (call $s8_read (global.get $s) (i32.const 0x100) (i32.const 4)))
    (func (export "cancel") (result i32) (call $s8_cancel_r (global.get $s)))
    (func (export "peek") (result i32) (i32.load (i32.const 0x100)))
    (func (export "drop") (call $s8_drop_r (global.get $s))))
  (core func $s8_read (canon stream.read $S8 async (memory (core memory $mem "mem"))))
  (core func $s8_cancel_r (canon stream.cancel-read $S8 async))
  (core func $s8_drop_r (canon stream.drop-readable $S8))
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $mem "mem"))
    (export "s8_read" (func $s8_read))
    (export "s8_cancel_r" (func $s8_cancel_r))
    (export "s8_drop_r" (func $s8_drop_r))))))
  (func (export "hold") (param "s" (stream u8)) (canon lift (core func $m "hold")))
  (func (export "read") (result u32) (canon lift (core func $m "read")))
  (func (export "cancel") (result u32) (canon lift (core func $m "cancel")))
  (func (export "peek") (result u32) (canon lift (core func $m "peek")))
  (func (export "drop") (canon lift (core func $m "drop")))
)
"""

BLOCKED = 0xFFFF_FFFF
COMPLETED, DROPPED, CANCELLED = 0, 1, 2


async def test_guest_cancelled_reads_lose_no_host_item(engine: Any, mode: str) -> None:
    # The guest reads 4 bytes at a time and cancels every read that blocks.
    # A read cancelled while the host's item is on its way reports what it
    # copied (nothing, or the whole item if it completed first); the item,
    # and on a store thread the spare fetched with it, go to the next reads.
    component = trio_wasi.Component.from_wat(CANCEL_WAT, engine=engine)
    send, recv = trio.open_memory_channel[bytes](0)
    items = [b"dddd", b"eeee", b"ffff"]

    async def sender(item: bytes) -> None:
        await send.send(item)

    got = bytearray()
    linker = trio_wasi.Linker(engine)
    with trio.fail_after(30):  # a hang guard only
        async with (
            linker.instantiate(component, run_on_thread=mode == "threaded") as inst,
            trio.open_nursery() as nursery,
        ):
            await inst.call("hold", recv)
            # Nothing is sent yet: the read blocks and its cancel copies nothing.
            assert await inst.call("read") == BLOCKED
            assert await inst.call("cancel") == CANCELLED
            for item in items:
                nursery.start_soon(sender, item)
                await trio.testing.wait_all_tasks_blocked()
            while len(got) < 12:
                code = await inst.call("read")
                if code == BLOCKED:
                    code = await inst.call("cancel")
                    if code & 0xF == CANCELLED and code >> 4 == 0:
                        await trio.sleep(0.001)
                        continue
                assert code & 0xF in (COMPLETED, CANCELLED)
                n = code >> 4
                assert n == 4  # host items are never split across reads of 4
                got.extend((await inst.call("peek")).to_bytes(4, "little")[:n])
            await send.aclose()
            # The end reaches a read, or the cancel of one (which then
            # reports the end it raced with).
            while (code := await inst.call("read")) == BLOCKED:
                code = await inst.call("cancel")
                if code != CANCELLED:
                    break
                await trio.sleep(0.001)
            assert code == DROPPED
            await inst.call("drop")
    assert bytes(got) == b"".join(items)


async def test_an_uncancellable_read_wait_ends_with_its_outcome() -> None:
    # receive_if_ready waits for a read that never parks: a cancellation
    # during the wait neither ends it nor is lost; it comes at the next
    # checkpoint, once the outcome has arrived.
    from trio_wasi._abi._streams import CopyResult
    from trio_wasi._run._hostvalues import _Read

    rd = _Read()
    steps: list[str] = []

    async def waiter(cs: trio.CancelScope) -> None:
        with cs:
            await rd.wait(cancellable=False)
            steps.append("woken")
            await trio.lowlevel.checkpoint()
            steps.append("not cancelled")
        steps.append("cancelled" if cs.cancelled_caught else "ran through")

    async with trio.open_nursery() as nursery:
        cs = trio.CancelScope()
        nursery.start_soon(waiter, cs)
        await trio.testing.wait_all_tasks_blocked()
        cs.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert steps == []  # still waiting for the outcome
        rd.finish(CopyResult.COMPLETED, [b"x"])
    assert steps == ["woken", "cancelled"]
    assert rd.values == [b"x"]
