"""The writer of the crash tests (test_crash.py), and the model it is checked against.

Run as a program, it does random file operations in a directory until it is
stopped or an operation fails (as every one does once the daemon behind the
mount is killed):

    crashwriter.py DIR STATE.json SEED

STATE.json maps the names already in DIR to their sizes. Each operation is
announced on stdout before it starts, as "B <json>", and confirmed as "D"
once it and the fsync of the file and of DIR have returned: from then on the
filesystem owes the operation's result across any crash. The operations:
create (mostly 0-70 kB, some 0.1-6 MB, some 16-20 MB across a 16 MiB chunk
boundary), append, pwrite into the middle, rewrite (O_TRUNC and new
content), extend with fallocate, truncate (shorter or longer), rename over an
existing file or to a new name, unlink.

Imported, it gives the content of every operation (apply) so that the test
keeps a model of what DIR must hold, and accepts() for the one operation a
crash interrupted (its outcome may be old, new, or for writes, in between).
"""

import json
import os
import random
import sys

MiB = 1 << 20
MAX_FILES = 40
MAX_BYTES = 100 * MiB  # the whole tree, so that each cycle can read it all back


def data(seed, n):
    return random.Random(seed).randbytes(n)


def apply(model, op):
    """Apply OP to MODEL ({name: bytearray}) as the filesystem must."""
    kind, name = op["op"], op["name"]
    if kind == "create":
        model[name] = bytearray(data(op["seed"], op["size"]))
    elif kind == "append":
        model[name] += data(op["seed"], op["len"])
    elif kind == "pwrite":
        b, off, n = model[name], op["off"], op["len"]
        if off > len(b):
            b.extend(bytes(off - len(b)))
        b[off:off + n] = data(op["seed"], n)
    elif kind == "rewrite":  # open with O_TRUNC, write anew
        model[name] = bytearray(data(op["seed"], op["size"]))
    elif kind == "extend":  # fallocate past the end: zeros
        b = model[name]
        if op["size"] > len(b):
            b.extend(bytes(op["size"] - len(b)))
    elif kind == "truncate":
        b, size = model[name], op["size"]
        if size < len(b):
            del b[size:]
        else:
            b.extend(bytes(size - len(b)))
    elif kind == "rename":
        model[op["dst"]] = model.pop(name)
    elif kind == "unlink":
        del model[name]
    else:
        raise ValueError(kind)


def touched(op):
    """The names whose content OP may change."""
    return [op["name"], op["dst"]] if op["op"] == "rename" else [op["name"]]


BLOCK = 4096


def between(got, old, new):
    """True if GOT could be a write from OLD to NEW interrupted part way:
    its length lies between theirs and each byte is the old, the new or a
    zero (a hole the write had not filled yet)."""
    old, new = old or b"", new or b""
    if not min(len(old), len(new)) <= len(got) <= max(len(old), len(new)):
        return False
    zero = bytes(BLOCK)
    for i in range(0, len(got), BLOCK):
        g = got[i:i + BLOCK]
        o, n = old[i:i + len(g)], new[i:i + len(g)]
        if g == o or g == n or g == zero[:len(g)]:
            continue
        for j, c in enumerate(g):
            if not (c == 0 or (j < len(o) and c == o[j]) or (j < len(n) and c == n[j])):
                return False
    return True


def accepts(op, before, after, got):
    """Whether GOT ({name: bytes or None}) is an outcome of the interrupted OP,
    from BEFORE to AFTER (the same shape; None: no such file)."""
    names = touched(op)
    if all(got[n] == before[n] for n in names) or all(got[n] == after[n] for n in names):
        return True
    if op["op"] in ("rename", "unlink"):
        return False
    name = op["name"]
    if got[name] is None:
        return False
    if op["op"] == "rewrite" and between(got[name], b"", after[name]):
        return True  # emptied by O_TRUNC, then written in part
    return between(got[name], before[name], after[name])


# -- the writer ------------------------------------------------------------------

def fsync_path(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pick(rnd, sizes, serial):
    """The next operation, given SIZES ({name: size}) of what DIR holds."""
    names = sorted(sizes)
    total = sum(sizes.values())
    weights = {"create": 25, "append": 15, "pwrite": 25, "truncate": 10, "rename": 10,
               "unlink": 10, "rewrite": 8, "extend": 4}
    if not names:
        weights = {"create": 1}
    elif len(names) >= MAX_FILES or total > MAX_BYTES:
        weights = {"unlink": 3, "truncate": 1, "pwrite": 1}
    kind = rnd.choices(list(weights), list(weights.values()))[0]
    seed = rnd.randrange(1 << 30)
    if kind == "create":
        r = rnd.random()
        if r < 0.7:
            size = rnd.randrange(0, 70_000)
        elif r < 0.9:
            size = rnd.randrange(100_000, 6_000_000)
        else:
            size = rnd.randrange(16_000_000, 20_000_000)  # across the 16 MiB chunk boundary
        return {"op": "create", "name": "f%05d" % serial, "size": size, "seed": seed}
    name = rnd.choice(names)
    size = sizes[name]
    if kind == "append":
        return {"op": "append", "name": name, "len": rnd.randrange(1, 300_000), "seed": seed}
    if kind == "pwrite":
        if size and rnd.random() < 0.2 and size > 16 * MiB:
            off = 16 * MiB - rnd.randrange(1, 100_000)  # across the chunk boundary
        else:
            off = rnd.randrange(0, size + 1) if size else 0
        return {"op": "pwrite", "name": name, "off": off, "len": rnd.randrange(1, 200_000),
                "seed": seed}
    if kind == "rewrite":
        size = rnd.randrange(0, 70_000) if rnd.random() < 0.8 else rnd.randrange(0, 6_000_000)
        return {"op": "rewrite", "name": name, "size": size, "seed": seed}
    if kind == "extend":
        return {"op": "extend", "name": name, "size": size + rnd.randrange(1, 3 * MiB)}
    if kind == "truncate":
        new = rnd.randrange(0, size + 1) if rnd.random() < 0.7 else size + rnd.randrange(1, 2 * MiB)
        return {"op": "truncate", "name": name, "size": new}
    if kind == "rename":
        if len(names) > 1 and rnd.random() < 0.6:
            dst = rnd.choice([n for n in names if n != name])
        else:
            dst = "f%05d" % serial
        return {"op": "rename", "name": name, "dst": dst}
    return {"op": "unlink", "name": name}


def do(root, op):
    kind, path = op["op"], os.path.join(root, op["name"])
    if kind in ("create", "rewrite"):
        how = os.O_CREAT | os.O_EXCL if kind == "create" else os.O_TRUNC
        fd = os.open(path, os.O_WRONLY | how, 0o644)
        try:
            buf = data(op["seed"], op["size"])
            for i in range(0, len(buf), MiB):
                os.write(fd, buf[i:i + MiB])
            os.fsync(fd)
        finally:
            os.close(fd)
    elif kind in ("append", "pwrite"):
        flags = os.O_WRONLY | (os.O_APPEND if kind == "append" else 0)
        fd = os.open(path, flags)
        try:
            buf = data(op["seed"], op["len"])
            if kind == "append":
                os.write(fd, buf)
            else:
                os.pwrite(fd, buf, op["off"])
            os.fsync(fd)
        finally:
            os.close(fd)
    elif kind == "extend":
        fd = os.open(path, os.O_WRONLY)
        try:
            os.posix_fallocate(fd, 0, op["size"])
            os.fsync(fd)
        finally:
            os.close(fd)
    elif kind == "truncate":
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, op["size"])
            os.fsync(fd)
        finally:
            os.close(fd)
    elif kind == "rename":
        os.rename(path, os.path.join(root, op["dst"]))
        fsync_path(os.path.join(root, op["dst"]))
    elif kind == "unlink":
        os.unlink(path)
    fsync_path(root, os.O_RDONLY | os.O_DIRECTORY)


def size_after(sizes, op):
    kind, name = op["op"], op["name"]
    if kind == "create":
        sizes[name] = op["size"]
    elif kind == "append":
        sizes[name] += op["len"]
    elif kind == "pwrite":
        sizes[name] = max(sizes[name], op["off"] + op["len"])
    elif kind in ("truncate", "rewrite"):
        sizes[name] = op["size"]
    elif kind == "extend":
        sizes[name] = max(sizes[name], op["size"])
    elif kind == "rename":
        sizes[op["dst"]] = sizes.pop(name)
    else:
        del sizes[name]


def main():
    root, state, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(state) as f:
        sizes = json.load(f)
    rnd = random.Random(seed)
    serial = seed * 100_000  # names unique across cycles (seeds differ)
    while True:
        serial += 1
        op = pick(rnd, sizes, serial)
        print("B " + json.dumps(op), flush=True)
        try:
            do(root, op)
        except OSError as e:
            print("E %s" % e, flush=True)
            return 1
        print("D", flush=True)
        size_after(sizes, op)


if __name__ == "__main__":
    sys.exit(main())
