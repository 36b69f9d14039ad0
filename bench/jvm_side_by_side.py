#!/usr/bin/env python3
"""jvm_side_by_side.py — contprof's JVM CPU profile next to another profiler's.

Compares the cpu-time of contprof's pprof files (a directory) with a
collapsed-stacks file of the same kind of run (frames root first, ';'
separated, a count at the end of each line), as async-profiler writes it
with `event=cpu,ann,threads,collapsed`. Prints, for both:
  - the share of CPU in pseudo-frames ([unknown*], [not_walkable*]);
  - the share with no Java frame (JIT, GC and VM threads);
  - the entry point's inclusive share of the main thread;
  - the methods with the most "self" CPU, self being the leaf-most Java
    frame of a stack (the JVM's own frames above it do not count), as a
    share of all CPU.
Names are compared without signatures, with '/' as '.', and with lambda
class suffixes dropped. The other profiler's Java frames are the ones
annotated _[j] (compiled), _[i] (inlined), _[0] (interpreted) or _[1] (C1);
its main thread is the root frame "[main tid=...]" or "[DestroyJavaVM
tid=...]" (the launcher's thread is renamed at exit).

Run both profilers in the same JVM to compare attribution: separate runs
compile differently (JRuby's hottest method read 15% in one run and 4% in
the next). Each then shows the other's signal handler as CPU of the
interrupted thread; --skip-frames REGEX leaves such stacks out of contprof's
side (e.g. 'PerfEvents::|^Profiler::|Symbols::parseLibraries').

usage: jvm_side_by_side.py CONTPROF_DIR OTHER.collapsed ENTRY [--top N] [--skip-frames REGEX]
  ENTRY: the entry method, e.g. com.sun.tools.javac.Main.main
"""
import argparse
import collections
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import pprof  # noqa: E402  (the tests' pure-Python decoder)

PSEUDO = ("[unknown", "[not_walkable")  # the definition
OTHER_JAVA = re.compile(r"_\[[ij01]\]$")


def norm(name):
    name = name.replace("/", ".")
    name = re.sub(r"_\[[a-z0-9]\]$", "", name)
    name = re.sub(r"\(.*$", "", name)
    return re.sub(r"\$\$Lambda[^.]*", "$$Lambda", name)


class Side:
    def __init__(self):
        self.total = self.pseudo = self.no_java = self.main = self.main_entry = 0
        self.self_by = collections.Counter()

    def add(self, names, java_leaf, value, is_main, entry):
        self.total += value
        if any(n.startswith(PSEUDO) for n in names):
            self.pseudo += value
        if java_leaf is None:
            self.no_java += value
        else:
            self.self_by[norm(java_leaf)] += value
        if is_main:
            self.main += value
            if any(norm(n).endswith(entry) for n in names):
                self.main_entry += value

    def pct(self, v, of=None):
        of = self.total if of is None else of
        return 100.0 * v / of if of else 0.0


def contprof_side(path, entry, skip):
    s = Side()
    for stack, mods, value, labels in pprof.load_dir(path).rows_modules("cpu-time"):
        names = [f[0] for f in stack]
        if skip and any(skip.search(n) for n in names):
            continue
        leaf = next((f[0] for f, m in zip(stack, mods) if m.startswith("[java:")), None)
        s.add(names, leaf, value, labels.get("thread name") == "main", entry)
    return s


def other_side(path, entry):
    s = Side()
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = stack.split(";")
            java = [f for f in frames if OTHER_JAVA.search(f)]
            root = frames[0]
            s.add(frames, java[-1] if java else None, int(count),
                  root.startswith(("[main tid=", "[DestroyJavaVM tid=")), entry)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("contprof_dir")
    ap.add_argument("other")
    ap.add_argument("entry")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--skip-frames", default="", help="leave contprof stacks with a frame matching this out")
    a = ap.parse_args()
    ours = contprof_side(a.contprof_dir, a.entry, re.compile(a.skip_frames) if a.skip_frames else None)
    other = other_side(a.other, a.entry)
    if not ours.total or not other.total:
        sys.exit("jvm_side_by_side.py: no CPU samples in %s" % (a.contprof_dir if not ours.total else a.other))
    print("%-58s %10s %10s" % ("", "contprof", "other"))
    print("%-58s %9.0fs %9d" % ("CPU (contprof: seconds; other: samples)", ours.total / 1e9, other.total))
    for label, attr in (("pseudo-frames", "pseudo"), ("no Java frame (JIT, GC, VM threads)", "no_java")):
        print("%-58s %9.2f%% %9.2f%%" % (label, ours.pct(getattr(ours, attr)), other.pct(getattr(other, attr))))
    print("%-58s %9.2f%% %9.2f%%" % ("main thread: %s inclusive" % a.entry[-30:], ours.pct(ours.main_entry, ours.main),
                                    other.pct(other.main_entry, other.main)))
    print("self (leaf-most Java frame), share of all CPU:")
    names = set(n for n, _ in ours.self_by.most_common(a.top)) | set(n for n, _ in other.self_by.most_common(a.top))
    for n in sorted(names, key=lambda n: -(ours.pct(ours.self_by[n]) + other.pct(other.self_by[n]))):
        print("  %-56s %9.2f%% %9.2f%%" % (n[-56:], ours.pct(ours.self_by[n]), other.pct(other.self_by[n])))


if __name__ == "__main__":
    main()
