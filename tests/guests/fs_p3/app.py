"""A WASI 0.3 command that works in a granted directory and tries to leave it.

The host grants ``/data`` (writable) and ``/ro`` (read-only); beside ``/data``
on the host lies ``secret.txt``, and ``/data/out`` is a symlink to the
directory holding it. Through ``wasi:filesystem@0.3.0`` the guest writes,
reads, renames, lists and deletes files, then tries to escape (``..``, an
absolute path, the host's symlink, a symlink it made itself, a hard link,
a rename, writes to the read-only grant). Through Python's own ``open`` and
``os`` (wasi:filesystem@0.2 by way of the libc adapter) it does the same.
With the arguments ``bench NAME`` it instead reads ``/data/NAME`` to the end
once through each generation's stream and prints the bytes and nanoseconds
each took, as the guest's own clock saw them (the ``fs`` benchmark).

Every line it prints is the same on any correct host, so a test compares the
output exactly; a refusal prints the error-code's name (0.3) or the errno
name (0.2).
"""

import errno
import os
import shutil

import wit_world
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import environment, monotonic_clock, preopens
from wit_world.imports.wasi_filesystem_types import (
    DescriptorFlags,
    OpenFlags,
    PathFlags,
)

NONE = PathFlags(0)
FOLLOW = PathFlags.SYMLINK_FOLLOW
RW = DescriptorFlags.READ | DescriptorFlags.WRITE


def code(exc: Err) -> str:
    return type(exc.value).__name__.removeprefix("ErrorCode_")


async def attempt(label: str, make) -> None:
    try:
        await make()
    except Err as exc:
        print(f"{label}: refused {code(exc)}")
    else:
        print(f"{label}: ALLOWED")


async def write_file(d, name: str, data: bytes) -> None:
    f = await d.open_at(NONE, name, OpenFlags.CREATE | OpenFlags.TRUNCATE, RW)
    writer, reader = wit_world.byte_stream()
    done = f.write_via_stream(reader, 0)
    with writer:
        await writer.write_all(data)
    await done.read()


async def read_file(d, name: str) -> bytes:
    f = await d.open_at(FOLLOW, name, OpenFlags(0), DescriptorFlags.READ)
    reader, done = f.read_via_stream(0)
    data = b""
    with reader:
        while not reader.writer_dropped:
            data += await reader.read(65536)
    await done.read()
    return data


async def listing(d) -> list[str]:
    reader, done = d.read_directory()
    names = []
    with reader:
        while not reader.writer_dropped:
            names += [e.name for e in await reader.read(16)]
    await done.read()
    return sorted(names)


async def bench(data, name: str) -> None:
    f = await data.open_at(FOLLOW, name, OpenFlags(0), DescriptorFlags.READ)
    start = monotonic_clock.now()
    reader, done = f.read_via_stream(0)
    n = 0
    with reader:
        while not reader.writer_dropped:
            n += len(await reader.read(1 << 20))
    await done.read()
    print(f"p3 {n} {monotonic_clock.now() - start}")
    start = monotonic_clock.now()
    n = 0
    with open(f"/data/{name}", "rb", buffering=0) as file:
        while chunk := file.read(1 << 20):
            n += len(chunk)
    print(f"p2 {n} {monotonic_clock.now() - start}")


async def more_p2() -> None:
    """The rest of Python's file API a program commonly uses (wasi:filesystem@0.2)."""
    os.makedirs("/data/x/y/z")
    with open("/data/x/y/z/f", "wb") as f:
        f.write(b"0123456789")
    with open("/data/x/y/z/f", "ab") as f:
        f.write(b"abc")
    with open("/data/x/y/z/f", "r+b") as f:
        f.seek(8)
        print(f"p2 seek+read: {f.read(3)!r}")
        f.truncate(5)
    print(f"p2 size after truncate: {os.stat('/data/x/y/z/f').st_size}")
    os.utime("/data/x/y/z/f", (1_000_000_000, 1_500_000_000))
    print(f"p2 mtime: {int(os.stat('/data/x/y/z/f').st_mtime)}")
    os.symlink("z/f", "/data/x/y/link")
    print(f"p2 readlink: {os.readlink('/data/x/y/link')}")
    print(f"p2 isdir/isfile: {os.path.isdir('/data/x/y')} {os.path.isfile('/data/x/y/link')}")
    walked = [(root, sorted(dirs), sorted(files)) for root, dirs, files in os.walk("/data/x")]
    print(f"p2 walk: {walked}")
    shutil.rmtree("/data/x")
    print(f"p2 exists after rmtree: {os.path.exists('/data/x')}")


class Run(exports.Run):
    async def run(self) -> None:
        dirs = dict((path, d) for d, path in preopens.get_directories())
        args = environment.get_arguments()[1:]
        if args[:1] == ["bench"]:
            await bench(dirs["/data"], args[1])
            return
        print(f"preopens: {sorted(dirs)}")
        data, ro = dirs["/data"], dirs["/ro"]

        # p3: write, read, rename, list, delete.
        await write_file(data, "a.txt", b"hello from p3")
        print(f"p3 read: {await read_file(data, 'a.txt')!r}")
        await data.rename_at("a.txt", data, "b.txt")
        print(f"p3 list: {await listing(data)}")
        await data.create_directory_at("sub")
        await data.rename_at("b.txt", data, "sub/c.txt")
        print(f"p3 moved: {await read_file(data, 'sub/c.txt')!r}")
        await data.unlink_file_at("sub/c.txt")
        await data.remove_directory_at("sub")
        print(f"p3 list after delete: {await listing(data)}")

        # p3: escapes.
        async def opens(path: str, flags=FOLLOW):
            return await data.open_at(flags, path, OpenFlags(0), DescriptorFlags.READ)

        await attempt("p3 ../secret.txt", lambda: opens("../secret.txt"))
        await attempt("p3 /etc/passwd", lambda: opens("/etc/passwd"))
        await attempt("p3 out/secret.txt", lambda: opens("out/secret.txt"))
        await data.symlink_at("../secret.txt", "mine")
        await attempt("p3 own symlink", lambda: opens("mine"))
        await attempt("p3 absolute symlink", lambda: data.symlink_at("/etc", "abs"))
        await attempt("p3 hard link out", lambda: data.link_at(FOLLOW, "out/secret.txt", data, "h"))
        await write_file(data, "keep.txt", b"x")
        await attempt("p3 rename out", lambda: data.rename_at("keep.txt", data, "../keep.txt"))
        await attempt(
            "p3 write read-only",
            lambda: ro.open_at(NONE, "r.txt", OpenFlags(0), RW),
        )
        await attempt(
            "p3 create read-only",
            lambda: ro.open_at(NONE, "new.txt", OpenFlags.CREATE, DescriptorFlags.READ),
        )
        print(f"p3 read-only read: {await read_file(ro, 'r.txt')!r}")

        # p2 through the libc adapter: Python's own file API.
        with open("/data/p2.txt", "w") as f:
            f.write("hello from p2")
        os.rename("/data/p2.txt", "/data/p2b.txt")
        with open("/data/p2b.txt") as f:
            print(f"p2 read: {f.read()!r}")
        print(f"p2 list: {sorted(os.listdir('/data'))}")
        os.remove("/data/p2b.txt")
        os.remove("/data/keep.txt")
        os.remove("/data/mine")
        print(f"p2 list after delete: {sorted(os.listdir('/data'))}")
        await more_p2()
        for path in ("/data/../secret.txt", "/data/out/secret.txt", "/secret.txt"):
            try:
                with open(path) as f:
                    f.read()
            except OSError as exc:
                print(f"p2 {path}: refused {errno.errorcode[exc.errno]}")
            else:
                print(f"p2 {path}: ALLOWED")
        try:
            open("/ro/r.txt", "w").close()
        except OSError as exc:
            print(f"p2 write read-only: refused {errno.errorcode[exc.errno]}")
        else:
            print("p2 write read-only: ALLOWED")
