#!/usr/bin/python3
"""meta_bench.py - Zero against the native disk, s3fs and rclone mount on the
workloads of everyday use: many small files, trees, renames, random I/O,
sequential I/O with fsync, and real programs (ls -l of a large directory,
git, SQLite), in one run on one local S3 server (s3rver on 127.0.0.1).

    bench/meta_bench.py [--build DIR] [--rounds N] [--targets native,zero,s3fs,rclone]
                        [--workloads a,b,...] [--scale N] [--out DIR]

Every workload runs ROUNDS times (default 3), and each round runs every
target in turn (interleaved: the machine's noise falls on all of them
alike). The table gives the median, the spread (max - min in % of the
median) and the ratio to the native disk's median of the same run. The
daemon's peak RSS during each workload is taken for Zero (VmHWM, reset
before the workload through /proc/PID/clear_refs). --scale N adds the
scale run on Zero and the native disk: N empty files in a tree of 1,000
per directory, then `find` over it, and one directory of N/10 entries
listed with `ls -l` (N=1000000 is the figure the goals name).

Results go to OUT (default bench/results/): meta_bench.json, and
meta_bench.png (gnuplot) with the ratios to native. Peers that cannot be
installed (apt-get) are skipped with a note. Run as root (mounts,
drop_caches). It stops only what it started, and removes its work
directory.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INTEG = ROOT / "tests" / "integration"
MiB = 1 << 20


def sh(*cmd, **kw):
    return subprocess.run(list(map(str, cmd)), check=True, **kw)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("port %d not listening" % port)


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(l.split()[1] == path for l in f)


# ---- workloads: each takes a fresh directory on the target, returns (count, seconds) ----

SMALL_N = 2000
SMALL = bytes(random.Random(1).getrandbits(8) for _ in range(4096))


def timed(fn):
    t0 = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - t0


def prepare_small(d):
    os.mkdir(d / "small")
    for i in range(SMALL_N):
        with open(d / "small" / ("f%05d" % i), "wb") as f:
            f.write(SMALL)


def w_create(d):
    def run():
        prepare_small(d)
        return SMALL_N
    return timed(run)


def w_ls_l(d):
    prepare_small(d)

    def run():
        sh("ls", "-l", d / "small", stdout=subprocess.DEVNULL)
        return SMALL_N
    return timed(run)


def w_read(d):
    prepare_small(d)
    drop_caches()

    def run():
        for name in os.listdir(d / "small"):
            with open(d / "small" / name, "rb") as f:
                f.read()
        return SMALL_N
    return timed(run)


def w_delete(d):
    prepare_small(d)

    def run():
        for name in os.listdir(d / "small"):
            os.unlink(d / "small" / name)
        return SMALL_N
    return timed(run)


def w_stat_rename_chmod(d):
    prepare_small(d)
    names = sorted(os.listdir(d / "small"))

    def run():
        for name in names:
            p = d / "small" / name
            os.stat(p)
            q = d / "small" / ("r" + name)
            os.rename(p, q)
            os.chmod(q, 0o600)
        return 3 * len(names)
    return timed(run)


TREE_TAR = None  # built once per run: a source-like tree


def make_tree_tar(work):
    """A tree like a source package: 3,000 files in 300 directories, 36 MiB."""
    rnd = random.Random(7)
    src = work / "tree-src"
    files = 0
    for dn in range(300):
        dd = src / ("d%02d" % (dn // 30)) / ("sub%03d" % dn)
        dd.mkdir(parents=True)
        for fn in range(10):
            size = int(rnd.paretovariate(1.2) * 2000) % (1 << 20)
            (dd / ("file%02d.c" % fn)).write_bytes(rnd.randbytes(size))
            files += 1
    tar = work / "tree.tar"
    with tarfile.open(tar, "w") as t:
        t.add(src, arcname="tree")
    shutil.rmtree(src)
    with tarfile.open(tar) as t:
        entries = len(t.getmembers())
    return tar, entries


def extract_tree(d, drop=False):
    """The tree of the run into D; DROP: then drop the caches. Its number of entries."""
    tar, entries = TREE_TAR
    sh("tar", "-xf", tar, "-C", d)
    if drop:
        drop_caches()
    return entries


def w_untar(d):
    tar, entries = TREE_TAR

    def run():
        sh("tar", "-xf", tar, "-C", d)
        return entries
    return timed(run)


def walk(d, *cmd):
    """CMD over the tree in D, its caches cold."""
    entries = extract_tree(d, drop=True)

    def run():
        sh(*cmd, d / "tree", stdout=subprocess.DEVNULL)
        return entries
    return timed(run)


def w_find(d):
    return walk(d, "find")


def w_du(d):
    return walk(d, "du", "-s")


def w_rm_rf(d):
    entries = extract_tree(d)

    def run():
        sh("rm", "-rf", d / "tree")
        return entries
    return timed(run)


def w_randrw(d):
    size = 64 * MiB
    path = d / "rand"
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
    fd = os.open(path, os.O_RDWR)
    try:
        with open(path, "rb") as f:  # in the page cache, as "cached data"
            while f.read(MiB):
                pass
        rnd = random.Random(3)
        block = os.urandom(4096)
        n = 20000

        def run():
            for i in range(n):
                off = rnd.randrange(size // 4096) * 4096
                if i % 2:
                    os.pwrite(fd, block, off)
                else:
                    os.pread(fd, 4096, off)
            return n
        return timed(run)
    finally:
        os.close(fd)


SEQ = 512 * MiB


def w_seq_write(d):
    buf = os.urandom(MiB)

    def run():
        fd = os.open(d / "seq", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for _ in range(SEQ // MiB):
            os.write(fd, buf)
        os.fsync(fd)
        os.close(fd)
        return SEQ // MiB
    return timed(run)


def w_seq_read(d):
    buf = os.urandom(MiB)
    with open(d / "seq", "wb") as f:
        for _ in range(SEQ // MiB):
            f.write(buf)
    drop_caches()

    def run():
        with open(d / "seq", "rb", buffering=0) as f:
            while f.read(MiB):
                pass
        return SEQ // MiB
    return timed(run)


BIGDIR_N = 20000


def w_ls_bigdir(d):
    os.mkdir(d / "big")
    for i in range(BIGDIR_N):
        os.close(os.open(d / "big" / ("entry-%06d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
    sh("ls", "-l", d / "big", stdout=subprocess.DEVNULL)  # warm

    def run():
        sh("ls", "-l", d / "big", stdout=subprocess.DEVNULL)
        return BIGDIR_N
    return timed(run)


def git_env(d):
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@b", HOME=str(d))
    return env


def w_git_add_commit(d):
    entries = extract_tree(d)
    env = git_env(d)
    sh("git", "init", "-q", d / "tree", env=env)

    def run():
        sh("git", "-C", d / "tree", "add", "-A", env=env)
        sh("git", "-C", d / "tree", "commit", "-qm", "x", env=env)
        return entries
    return timed(run)


GIT_REPO = None  # a repository on the native disk of the run, cloned from


def w_git_clone(d):
    tar, entries = TREE_TAR
    env = git_env(d)

    def run():
        sh("git", "clone", "-q", "--no-hardlinks", GIT_REPO, d / "clone", env=env)
        return entries
    return timed(run)


def w_sqlite(d):
    n = 20000
    db = sqlite3.connect(d / "db.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)")

    def run():
        for i in range(n):
            db.execute("BEGIN")
            db.execute("INSERT INTO t VALUES(?, ?)", (i, b"x" * 100))
            db.execute("COMMIT")
        return n
    try:
        return timed(run)
    finally:
        db.close()


WORKLOADS = {
    # name: (function, unit)
    "create": (w_create, "files/s"),
    "ls-l": (w_ls_l, "files/s"),
    "read": (w_read, "files/s"),
    "delete": (w_delete, "files/s"),
    "stat-rename-chmod": (w_stat_rename_chmod, "ops/s"),
    "untar": (w_untar, "entries/s"),
    "find": (w_find, "entries/s"),
    "du": (w_du, "entries/s"),
    "rm-rf": (w_rm_rf, "entries/s"),
    "randrw-4k": (w_randrw, "IOPS"),
    "seq-write-fsync": (w_seq_write, "MiB/s"),
    "seq-read": (w_seq_read, "MiB/s"),
    "ls-l-20k": (w_ls_bigdir, "entries/s"),
    "git-add-commit": (w_git_add_commit, "files/s"),
    "git-clone": (w_git_clone, "files/s"),
    "sqlite-20k-txn": (w_sqlite, "txn/s"),
}
# workloads the peers take minutes per round for, or cannot do (git, SQLite on s3fs)
PEERS_SKIP = {"ls-l-20k", "git-add-commit", "git-clone", "sqlite-20k-txn", "seq-write-fsync",
              "seq-read", "randrw-4k"}


# ---- targets ----

class Target:
    name = "?"
    pid = None

    def start(self, work):
        pass

    def stop(self):
        pass

    def rss_reset(self):
        if self.pid:
            try:
                with open("/proc/%d/clear_refs" % self.pid, "w") as f:
                    f.write("5\n")
            except OSError:
                pass

    def rss_peak(self):
        if not self.pid:
            return None
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None


class Native(Target):
    name = "native"

    def start(self, work):
        self.root = work / "native"
        self.root.mkdir()


class Zero(Target):
    name = "zero"

    def __init__(self, binary, url, extra=()):
        self.binary, self.url, self.extra = binary, url, list(extra)

    def start(self, work):
        self.root = work / "zmnt"
        self.root.mkdir()
        conf = work / "zero.yml"
        conf.write_text("backend: s3\nendpoint: %s\nbucket: zero\naccessKeyId: S3RVER\n"
                        "secretAccessKey: S3RVER\nuploadDelay: 1\n" % self.url)
        conf.chmod(0o600)
        # encrypted, as s3 is by default (encryption: false in --zero-args' config to compare)
        env = dict(os.environ, ZERO_PASSPHRASE=os.environ.get("ZERO_PASSPHRASE", "bench"))
        sh(self.binary, "mount", self.root, work / "zcache", "--config", conf, *self.extra,
           stdout=subprocess.DEVNULL, env=env)
        self.cache = work / "zcache"
        with open(self.cache / "lock") as f:
            self.pid = int(f.read().strip() or 0) or None

    def stop(self):
        if is_mounted(self.root):
            subprocess.run([self.binary, "umount", str(self.root)], timeout=300)


class S3fs(Target):
    name = "s3fs"

    def __init__(self, url):
        self.url = url

    def start(self, work):
        self.root = work / "s3fsmnt"
        self.root.mkdir()
        pw = work / "s3fs.passwd"
        pw.write_text("S3RVER:S3RVER\n")
        pw.chmod(0o600)
        sh("s3fs", "s3fs", self.root, "-o", "url=" + self.url, "-o", "use_path_request_style",
           "-o", "passwd_file=%s" % pw)
        time.sleep(1)

    def stop(self):
        if is_mounted(self.root):
            subprocess.run(["umount", str(self.root)])


class Rclone(Target):
    name = "rclone"

    def __init__(self, url):
        self.url = url

    def start(self, work):
        self.root = work / "rclonemnt"
        self.root.mkdir()
        env = dict(os.environ, RCLONE_CONFIG_B_TYPE="s3", RCLONE_CONFIG_B_PROVIDER="Other",
                   RCLONE_CONFIG_B_ENDPOINT=self.url, RCLONE_CONFIG_B_ACCESS_KEY_ID="S3RVER",
                   RCLONE_CONFIG_B_SECRET_ACCESS_KEY="S3RVER")
        env.pop("AWS_CA_BUNDLE", None)
        sh("rclone", "mount", "b:rclone", self.root, "--daemon", "--vfs-cache-mode", "full",
           "--cache-dir", work / "rclone-cache", env=env)
        for _ in range(50):
            if is_mounted(self.root):
                break
            time.sleep(0.1)

    def stop(self):
        if is_mounted(self.root):
            subprocess.run(["umount", str(self.root)])


# ---- the run ----

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--targets", default="native,zero,s3fs,rclone")
    ap.add_argument("--zero-args", default="", help="extra arguments to `zero mount`")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--scale", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("meta_bench: run as root (mounts, drop_caches)")
    zero_bin = os.environ.get("ZERO_BIN", str(Path(args.build) / "zero"))
    names = args.targets.split(",")
    workloads = args.workloads.split(",")
    for w in workloads:
        if w not in WORKLOADS:
            sys.exit("meta_bench: unknown workload %r (known: %s)" % (w, ", ".join(WORKLOADS)))
    for tool, pkg in (("s3fs", "s3fs"), ("rclone", "rclone")):
        if tool in names and not shutil.which(tool):
            subprocess.run(["apt-get", "install", "-y", "-qq", pkg], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=dict(os.environ,
                                                               DEBIAN_FRONTEND="noninteractive"))
            if not shutil.which(tool):
                print("meta_bench: %s not installable; skipping it" % tool, file=sys.stderr)
                names.remove(tool)
    if not (INTEG / "node_modules" / "s3rver" / "package.json").exists():
        sh("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", cwd=INTEG)

    work = Path(tempfile.mkdtemp(prefix="zero-metabench."))
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    s3 = subprocess.Popen(["node", "--openssl-legacy-provider", str(INTEG / "s3rver_main.js"),
                           "-d", str(work / "s3"), "-a", "127.0.0.1", "-p", str(port), "--silent",
                           "--configure-bucket", "zero", "--configure-bucket", "s3fs",
                           "--configure-bucket", "rclone"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    targets = []
    try:
        wait_port(port)
        make = {"native": Native, "zero": lambda: Zero(zero_bin, url, args.zero_args.split()), "s3fs": lambda: S3fs(url),
                "rclone": lambda: Rclone(url)}
        for n in names:
            t = make[n]()
            t.start(work)
            targets.append(t)
        global TREE_TAR, GIT_REPO
        TREE_TAR = make_tree_tar(work)
        repo = work / "repo"
        repo.mkdir()
        sh("tar", "-xf", TREE_TAR[0], "-C", repo)
        env = git_env(repo)
        sh("git", "init", "-q", repo / "tree", env=env)
        sh("git", "-C", repo / "tree", "add", "-A", env=env)
        sh("git", "-C", repo / "tree", "commit", "-qm", "x", env=env)
        GIT_REPO = repo / "tree"

        results = {}  # (workload, target) -> [rate per round]
        rss = {}      # workload -> peak RSS of Zero's daemon
        for w in workloads:
            fn, unit = WORKLOADS[w]
            for rnd in range(args.rounds):
                for t in targets:
                    if t.name in ("s3fs", "rclone") and w in PEERS_SKIP:
                        continue
                    d = t.root / ("%s-%d" % (w, rnd))
                    d.mkdir()
                    t.rss_reset()
                    try:
                        n, secs = fn(d)
                        rate = n / secs if secs > 0 else float("inf")
                    except (OSError, subprocess.CalledProcessError, sqlite3.Error) as e:
                        print("%s on %s: %s" % (w, t.name, e), file=sys.stderr)
                        rate = None
                    peak = t.rss_peak()
                    if peak:
                        rss[w] = max(rss.get(w, 0), peak)
                    results.setdefault((w, t.name), []).append(rate)
                    subprocess.run(["rm", "-rf", str(d)])
                    print("%-18s round %d %-7s %s" % (w, rnd, t.name,
                                                      "%.0f %s" % (rate, unit) if rate else "failed"),
                          file=sys.stderr, flush=True)
        scale = {}
        if args.scale:
            for t in targets:
                if t.name in ("native", "zero"):
                    scale[t.name] = scale_run(t, args.scale)
        report(results, rss, scale, workloads, [t.name for t in targets], args, Path(args.out))
    finally:
        for t in reversed(targets):
            try:
                t.stop()
            except Exception as e:  # keep stopping the others
                print("stopping %s: %s" % (t.name, e), file=sys.stderr)
        os.killpg(s3.pid, signal.SIGTERM)
        s3.wait()
        shutil.rmtree(work, ignore_errors=True)


def scale_run(t, n):
    """N empty files, 1,000 per directory; find over them; ls -l of one directory of N/10."""
    root = t.root / "scale"
    root.mkdir()
    t.rss_reset()
    t0 = time.perf_counter()
    for i in range(n):
        if i % 1000 == 0:
            d = root / ("d%05d" % (i // 1000))
            d.mkdir()
        os.close(os.open(d / ("f%04d" % (i % 1000)), os.O_CREAT | os.O_WRONLY, 0o644))
    create_s = time.perf_counter() - t0
    drop_caches()
    t0 = time.perf_counter()
    sh("find", root, stdout=subprocess.DEVNULL)
    find_s = time.perf_counter() - t0
    big = t.root / "scale-dir"
    big.mkdir()
    for i in range(n // 10):
        os.close(os.open(big / ("e%07d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
    sh("ls", "-l", big, stdout=subprocess.DEVNULL)
    t0 = time.perf_counter()
    sh("ls", "-l", big, stdout=subprocess.DEVNULL)
    ls_s = time.perf_counter() - t0
    out = {"files": n, "create_s": create_s, "find_s": find_s, "ls_l_entries": n // 10,
           "ls_l_warm_s": ls_s, "peak_rss": t.rss_peak()}
    subprocess.run(["rm", "-rf", str(root), str(big)])
    print("scale %s: %s" % (t.name, out), file=sys.stderr)
    return out


def report(results, rss, scale, workloads, names, args, out):
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for w in workloads:
        unit = WORKLOADS[w][1]
        native = [r for r in results.get((w, "native"), []) if r]
        base = statistics.median(native) if native else None
        row = {"workload": w, "unit": unit, "targets": {}}
        for n in names:
            rates = [r for r in results.get((w, n), []) if r]
            if not rates:
                continue
            med = statistics.median(rates)
            row["targets"][n] = {"median": med, "rounds": rates,
                                 "spread_pct": 100 * (max(rates) - min(rates)) / med,
                                 "ratio": med / base if base else None}
        if w in rss:
            row["zero_peak_rss"] = rss[w]
        rows.append(row)
    data = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": os.uname().nodename,
            "cores": os.cpu_count(), "rounds": args.rounds, "command": " ".join(sys.argv),
            "workloads": rows, "scale": scale}
    (out / "meta_bench.json").write_text(json.dumps(data, indent=1))

    head = "| workload | unit | " + " | ".join(
        "%s (spread)" % n + (" | %s/native" % n if n != "native" else "") for n in names)
    head += " | Zero peak RSS |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in rows:
        cells = [row["workload"], row["unit"]]
        for n in names:
            t = row["targets"].get(n)
            cells.append("%.0f (%.0f%%)" % (t["median"], t["spread_pct"]) if t else "-")
            if n != "native":
                cells.append("%.2f" % t["ratio"] if t and t["ratio"] else "-")
        cells.append("%.0f MiB" % (row["zero_peak_rss"] / MiB) if "zero_peak_rss" in row else "-")
        print("| " + " | ".join(cells) + " |")
    for n, s in scale.items():
        print("scale %s: %d files created in %.1f s, find %.1f s, ls -l of %d entries %.2f s warm,"
              " peak RSS %s" % (n, s["files"], s["create_s"], s["find_s"], s["ls_l_entries"],
                                s["ls_l_warm_s"],
                                "%.0f MiB" % (s["peak_rss"] / MiB) if s["peak_rss"] else "-"))
    plot(rows, names, out)


def plot(rows, names, out):
    if not shutil.which("gnuplot"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "gnuplot-nox"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if not shutil.which("gnuplot"):
        print("meta_bench: no gnuplot; no chart", file=sys.stderr)
        return
    others = [n for n in names if n != "native"]
    dat = out / "meta_bench.dat"
    with open(dat, "w") as f:
        f.write("workload " + " ".join(others) + "\n")
        for row in rows:
            f.write(row["workload"] + " " + " ".join(
                "%.4f" % row["targets"][n]["ratio"] if n in row["targets"] and
                row["targets"][n]["ratio"] else "0" for n in others) + "\n")
    script = """set terminal png size 1200,600
set output '%s'
set title 'ratio to the native disk (1 = native; higher is faster)'
set style data histogram
set style histogram cluster gap 1
set style fill solid border -1
set xtics rotate by -30
set logscale y
set yrange [0.001:2]
set grid ytics
plot %s
""" % (out / "meta_bench.png", ", ".join(
        "'%s' using %d:xtic(1) title '%s'" % (dat, i + 2, n) for i, n in enumerate(others)))
    subprocess.run(["gnuplot"], input=script.encode(), check=False)


if __name__ == "__main__":
    main()
