"""Several processes at once: appends, creates in one directory, disjoint
writes into one file. Each must look as if the operations were atomic."""

import os
import random

from sysutil import drop_caches, read_file, write_file

NPROC = 4


def _in_children(n, fn):
    pids = []
    for k in range(n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                fn(k)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def test_concurrent_appends(workdir):
    p = os.path.join(workdir, "log")
    write_file(p, b"")
    rec = 1000
    per = 200

    def child(k):
        fd = os.open(p, os.O_WRONLY | os.O_APPEND)
        for i in range(per):
            line = f"{k}:{i:05d}:".encode()
            os.write(fd, line + bytes([65 + k]) * (rec - len(line) - 1) +
                     b"\n")
        os.close(fd)

    _in_children(NPROC, child)
    assert os.stat(p).st_size == NPROC * per * rec
    drop_caches()
    data = read_file(p)
    assert len(data) == NPROC * per * rec
    seen = set()
    last = {}
    for off in range(0, len(data), rec):
        r = data[off:off + rec]
        k, i, body = r.split(b":", 2)
        k, i = int(k), int(i)
        assert body == bytes([65 + k]) * (len(body) - 1) + b"\n", off
        assert last.get(k, -1) < i      # each writer's records in order
        last[k] = i
        seen.add((k, i))
    assert len(seen) == NPROC * per


def test_concurrent_creates(workdir):
    def child(k):
        for i in range(150):
            n = f"p{k}-{i}"
            write_file(os.path.join(workdir, n), n.encode())
            if i % 3 == 0:
                os.mkdir(os.path.join(workdir, "d" + n))
            if i % 5 == 0:
                os.rename(os.path.join(workdir, n),
                          os.path.join(workdir, "r" + n))

    _in_children(NPROC, child)
    names = os.listdir(workdir)
    assert len(names) == len(set(names)) == NPROC * (150 + 50)
    assert os.stat(workdir).st_nlink == 2 + NPROC * 50
    drop_caches()
    for n in names:
        if n.startswith("d"):
            assert os.listdir(os.path.join(workdir, n)) == []
        else:
            assert read_file(os.path.join(workdir, n)) == \
                n.lstrip("r").encode()


def test_concurrent_disjoint_writes(workdir):
    p = os.path.join(workdir, "f")
    stripe = 64 * 1024 + 7
    nstripes = 64
    write_file(p, b"")

    def child(k):
        rnd = random.Random(k)
        fd = os.open(p, os.O_WRONLY)
        order = list(range(k, nstripes, NPROC))
        rnd.shuffle(order)
        for s in order:
            os.pwrite(fd, bytes([s]) * stripe, s * stripe)
        os.fsync(fd)
        os.close(fd)

    _in_children(NPROC, child)
    drop_caches()
    data = read_file(p)
    assert len(data) == stripe * nstripes
    for s in range(nstripes):
        assert data[s * stripe:(s + 1) * stripe] == bytes([s]) * stripe, s
