;; Two nested components wired together by the top level.
;;
;; A (string-encoding=utf8) defines and exports the resource `thing` (rep: address of a
;; {label_ptr, label_len} record in A's memory) plus functions over strings and things;
;; its destructor counts drops.  B (string-encoding=utf16, one export latin1+utf16)
;; imports A's interface and the host's `log`, and passes strings, own handles and
;; borrowed handles to A.  The top level exports B's functions, A's counters, and A's
;; whole instance.
(component
  (import "local:nested/host" (instance $host
    (export "log" (func (param "msg" string)))))

  (component $A
    ;; A1 holds the state the destructor needs, so the resource type can be defined
    ;; before the module that uses resource.new/rep/drop is instantiated.
    (core module $A1
      (memory (export "memory") 1)
      (global $bump (mut i32) (i32.const 1024))
      (global $created (export "created") (mut i32) (i32.const 0))
      (global $dropped (export "dropped") (mut i32) (i32.const 0))
      (func (export "realloc") (param $old i32) (param $old_size i32) (param $align i32)
          (param $new_size i32) (result i32)
        (local $ptr i32)
        (local.set $ptr
          (i32.and
            (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
            (i32.sub (i32.const 0) (local.get $align))))
        (global.set $bump (i32.add (local.get $ptr) (local.get $new_size)))
        (if (i32.gt_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
          (then
            (if (i32.eq
                  (memory.grow
                    (i32.add
                      (i32.shr_u
                        (i32.sub (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
                        (i32.const 16))
                      (i32.const 1)))
                  (i32.const -1))
              (then unreachable))))
        (if (local.get $old)
          (then
            (memory.copy (local.get $ptr) (local.get $old)
              (select (local.get $old_size) (local.get $new_size)
                (i32.lt_u (local.get $old_size) (local.get $new_size))))))
        (local.get $ptr))
      (func (export "dtor") (param $rep i32)
        (global.set $dropped (i32.add (global.get $dropped) (i32.const 1)))))
    (core instance $a1 (instantiate $A1))

    (type $thing (resource (rep i32) (dtor (core func $a1 "dtor"))))
    (core func $thing.new (canon resource.new $thing))
    (core func $thing.rep (canon resource.rep $thing))
    (core func $thing.drop (canon resource.drop $thing))

    (core module $A2
      (import "a1" "memory" (memory 1))
      (import "a1" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
      (import "a1" "created" (global $created (mut i32)))
      (import "a1" "dropped" (global $dropped (mut i32)))
      (import "thing" "new" (func $new (param i32) (result i32)))
      (import "thing" "rep" (func $rep (param i32) (result i32)))
      (import "thing" "drop" (func $drop (param i32)))
      ;; Returns the address of a (ptr, len) pair holding open ++ s ++ close (utf8).
      (func $wrap (param $open i32) (param $p i32) (param $l i32) (param $close i32)
          (result i32)
        (local $n i32)
        (local.set $n
          (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
            (i32.add (local.get $l) (i32.const 2))))
        (i32.store8 (local.get $n) (local.get $open))
        (memory.copy (i32.add (local.get $n) (i32.const 1)) (local.get $p) (local.get $l))
        (i32.store8 (i32.add (i32.add (local.get $n) (local.get $l)) (i32.const 1))
          (local.get $close))
        (i32.store (i32.const 16) (local.get $n))
        (i32.store (i32.const 20) (i32.add (local.get $l) (i32.const 2)))
        (i32.const 16))
      (func (export "shout") (param $p i32) (param $l i32) (result i32)
        (call $wrap (i32.const 60) (local.get $p) (local.get $l) (i32.const 62)))
      (func (export "ctor") (param $p i32) (param $l i32) (result i32)
        (local $rec i32)
        ;; The label was copied into our memory by the lowering; keep it where it is.
        (local.set $rec
          (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
        (i32.store (local.get $rec) (local.get $p))
        (i32.store offset=4 (local.get $rec) (local.get $l))
        (global.set $created (i32.add (global.get $created) (i32.const 1)))
        (call $new (local.get $rec)))
      ;; borrow<thing> arrives as the rep, since A implements the resource.
      (func (export "label") (param $rep i32) (result i32)
        (i32.store (i32.const 16) (i32.load (local.get $rep)))
        (i32.store (i32.const 20) (i32.load offset=4 (local.get $rep)))
        (i32.const 16))
      ;; own<thing> arrives as a handle in A's table: read it, then drop it (runs dtor).
      (func (export "consume") (param $h i32) (result i32)
        (local $rep i32)
        (local $ret i32)
        (local.set $rep (call $rep (local.get $h)))
        (local.set $ret
          (call $wrap (i32.const 91) (i32.load (local.get $rep))
            (i32.load offset=4 (local.get $rep)) (i32.const 93)))
        (call $drop (local.get $h))
        (local.get $ret))
      (func (export "created") (result i32) (global.get $created))
      (func (export "dropped") (result i32) (global.get $dropped)))
    (core instance $a2 (instantiate $A2
      (with "a1" (instance $a1))
      (with "thing" (instance
        (export "new" (func $thing.new))
        (export "rep" (func $thing.rep))
        (export "drop" (func $thing.drop))))))

    (export $thing-ex "thing" (type $thing))
    (func $shout (param "s" string) (result string)
      (canon lift (core func $a2 "shout") (memory (core memory $a1 "memory"))
        (realloc (core func $a1 "realloc")) string-encoding=utf8))
    (func $ctor (param "label" string) (result (own $thing-ex))
      (canon lift (core func $a2 "ctor") (memory (core memory $a1 "memory"))
        (realloc (core func $a1 "realloc")) string-encoding=utf8))
    (func $label (param "self" (borrow $thing-ex)) (result string)
      (canon lift (core func $a2 "label") (memory (core memory $a1 "memory")) string-encoding=utf8))
    (func $consume (param "t" (own $thing-ex)) (result string)
      (canon lift (core func $a2 "consume") (memory (core memory $a1 "memory")) string-encoding=utf8))
    (func $created (result u32) (canon lift (core func $a2 "created")))
    (func $dropped (result u32) (canon lift (core func $a2 "dropped")))
    (export "shout" (func $shout))
    (export "[constructor]thing" (func $ctor))
    (export "[method]thing.label" (func $label))
    (export "consume" (func $consume))
    (export "created" (func $created))
    (export "dropped" (func $dropped)))

  (component $B
    (import "local:nested/host" (instance $host
      (export "log" (func (param "msg" string)))))
    (import "local:nested/a" (instance $a
      (export "thing" (type $thing (sub resource)))
      (export "shout" (func (param "s" string) (result string)))
      (export "[constructor]thing" (func (param "label" string) (result (own $thing))))
      (export "[method]thing.label" (func (param "self" (borrow $thing)) (result string)))
      (export "consume" (func (param "t" (own $thing)) (result string)))
      (export "created" (func (result u32)))
      (export "dropped" (func (result u32)))))
    (alias export $a "thing" (type $thing))

    (core module $B1
      (memory (export "memory") 1)
      (global $bump (mut i32) (i32.const 1024))
      (func (export "realloc") (param $old i32) (param $old_size i32) (param $align i32)
          (param $new_size i32) (result i32)
        (local $ptr i32)
        (local.set $ptr
          (i32.and
            (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
            (i32.sub (i32.const 0) (local.get $align))))
        (global.set $bump (i32.add (local.get $ptr) (local.get $new_size)))
        (if (i32.gt_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
          (then
            (if (i32.eq
                  (memory.grow
                    (i32.add
                      (i32.shr_u
                        (i32.sub (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
                        (i32.const 16))
                      (i32.const 1)))
                  (i32.const -1))
              (then unreachable))))
        (if (local.get $old)
          (then
            (memory.copy (local.get $ptr) (local.get $old)
              (select (local.get $old_size) (local.get $new_size)
                (i32.lt_u (local.get $old_size) (local.get $new_size))))))
        (local.get $ptr)))
    (core instance $b1 (instantiate $B1))

    (core func $log (canon lower (func $host "log") (memory (core memory $b1 "memory"))
      string-encoding=utf16))
    (core func $shout16 (canon lower (func $a "shout") (memory (core memory $b1 "memory"))
      (realloc (core func $b1 "realloc")) string-encoding=utf16))
    (core func $shout-compact (canon lower (func $a "shout") (memory (core memory $b1 "memory"))
      (realloc (core func $b1 "realloc")) string-encoding=latin1+utf16))
    (core func $ctor (canon lower (func $a "[constructor]thing") (memory (core memory $b1 "memory"))
      string-encoding=utf16))
    (core func $label (canon lower (func $a "[method]thing.label") (memory (core memory $b1 "memory"))
      (realloc (core func $b1 "realloc")) string-encoding=utf16))
    (core func $consume (canon lower (func $a "consume") (memory (core memory $b1 "memory"))
      (realloc (core func $b1 "realloc")) string-encoding=utf16))
    (core func $thing.drop (canon resource.drop $thing))

    (core module $B2
      (import "b1" "memory" (memory 1))
      (import "a" "log" (func $log (param i32 i32)))
      (import "a" "shout16" (func $shout16 (param i32 i32 i32)))
      (import "a" "shout-compact" (func $shout-compact (param i32 i32 i32)))
      (import "a" "ctor" (func $ctor (param i32 i32) (result i32)))
      (import "a" "label" (func $label (param i32 i32)))
      (import "a" "consume" (func $consume (param i32 i32)))
      (import "a" "drop" (func $drop (param i32)))
      ;; Strings pass through unchanged: the lift and the lower on each path use the
      ;; same encoding, so B never has to look inside them.
      (func (export "shout-utf16") (param $p i32) (param $l i32) (result i32)
        (call $log (local.get $p) (local.get $l))
        (call $shout16 (local.get $p) (local.get $l) (i32.const 32))
        (i32.const 32))
      (func (export "shout-compact") (param $p i32) (param $l i32) (result i32)
        (call $shout-compact (local.get $p) (local.get $l) (i32.const 32))
        (i32.const 32))
      ;; own handle created, lent to A as a borrow, then dropped here (A's dtor runs).
      (func (export "label-then-drop") (param $p i32) (param $l i32) (result i32)
        (local $h i32)
        (local.set $h (call $ctor (local.get $p) (local.get $l)))
        (call $label (local.get $h) (i32.const 32))
        (call $drop (local.get $h))
        (i32.const 32))
      ;; own handle moved to A, which drops it.
      (func (export "consume") (param $p i32) (param $l i32) (result i32)
        (call $consume (call $ctor (local.get $p) (local.get $l)) (i32.const 32))
        (i32.const 32))
      ;; The handle is gone once moved to A, so lending it afterwards must trap.
      (func (export "use-after-consume") (param $p i32) (param $l i32)
        (local $h i32)
        (local.set $h (call $ctor (local.get $p) (local.get $l)))
        (call $consume (local.get $h) (i32.const 32))
        (call $label (local.get $h) (i32.const 32)))
      ;; Creates a thing and keeps it: its handle index stays in B's table.
      (func (export "keep") (param $p i32) (param $l i32) (result i32)
        (call $ctor (local.get $p) (local.get $l))))
    (core instance $b2 (instantiate $B2
      (with "b1" (instance $b1))
      (with "a" (instance
        (export "log" (func $log))
        (export "shout16" (func $shout16))
        (export "shout-compact" (func $shout-compact))
        (export "ctor" (func $ctor))
        (export "label" (func $label))
        (export "consume" (func $consume))
        (export "drop" (func $thing.drop))))))

    (func (export "shout-utf16") (param "s" string) (result string)
      (canon lift (core func $b2 "shout-utf16") (memory (core memory $b1 "memory"))
        (realloc (core func $b1 "realloc")) string-encoding=utf16))
    (func (export "shout-compact") (param "s" string) (result string)
      (canon lift (core func $b2 "shout-compact") (memory (core memory $b1 "memory"))
        (realloc (core func $b1 "realloc")) string-encoding=latin1+utf16))
    (func (export "label-then-drop") (param "s" string) (result string)
      (canon lift (core func $b2 "label-then-drop") (memory (core memory $b1 "memory"))
        (realloc (core func $b1 "realloc")) string-encoding=utf16))
    (func (export "consume") (param "s" string) (result string)
      (canon lift (core func $b2 "consume") (memory (core memory $b1 "memory"))
        (realloc (core func $b1 "realloc")) string-encoding=utf16))
    (func (export "use-after-consume") (param "s" string)
      (canon lift (core func $b2 "use-after-consume") (memory (core memory $b1 "memory"))
        (realloc (core func $b1 "realloc")) string-encoding=utf16))
    (func (export "keep") (param "s" string) (result u32)
      (canon lift (core func $b2 "keep") (memory (core memory $b1 "memory"))
        (realloc (core func $b1 "realloc")) string-encoding=utf16)))

  (instance $a (instantiate $A))
  (instance $b (instantiate $B
    (with "local:nested/host" (instance $host))
    (with "local:nested/a" (instance $a))))

  (export "shout-utf16" (func $b "shout-utf16"))
  (export "shout-compact" (func $b "shout-compact"))
  (export "label-then-drop" (func $b "label-then-drop"))
  (export "consume" (func $b "consume"))
  (export "use-after-consume" (func $b "use-after-consume"))
  (export "keep" (func $b "keep"))
  (export "created" (func $a "created"))
  (export "dropped" (func $a "dropped"))
  (export "local:nested/a" (instance $a)))
