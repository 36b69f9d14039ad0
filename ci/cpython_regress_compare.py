"""Compares the plain and profiled regrtest runs cpython_regress.sh left in
WORK/<X.Y>/{plain,profiled}.<n>.{log,xml}: prints a version x test table
(outcome without / with the profiler) and every test case that fails only
when profiled. Exit status 1 if any test or case is worse profiled."""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

LISTS = {  # regrtest summary header -> outcome of the tests it lists
    "failed": "FAIL", "skipped": "skip", "altered the execution environment": "ENV",
    "run no tests": "none", "omitted": "omit", "interrupted": "INT",
    "skipped (resource denied)": "skip", "resource denied": "skip",
}
RANK = {"ok": 0, "skip": 0, "none": 0, "omit": 0, "ENV": 1, "FAIL": 2, "INT": 2, "noresult": 3}


def requested(log):
    """The test names regrtest was asked to run (from its "== args" or the
    per-test progress lines)."""
    names = []
    for m in re.finditer(r"\[\s*\d+/(\d+)(?:/\d+)?\]\s+(test[\w.]+)", log):
        if m.group(2) not in names:
            names.append(m.group(2))
    return names


def outcomes(log):
    """{test: outcome} from the summary at the end of a regrtest log."""
    res = {}
    if not re.search(r"^(== )?Tests result: ", log, re.M) and "tests OK" not in log and "test OK" not in log:
        for t in requested(log):
            res[t] = "noresult"
        return res
    lines = log.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(?:All )?(\d+) tests? (.*?):?$", lines[i].strip())
        if m and m.group(2).rstrip(".:") in LISTS or (m and m.group(2).startswith("skipped")):
            key = m.group(2).rstrip(".:")
            kind = LISTS.get(key, "skip")
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                for t in lines[i].split():
                    if res.get(t, "ok") in ("ok", "skip", "none", "omit"):
                        res[t] = kind
                i += 1
            continue
        i += 1
    for t in requested(log):
        res.setdefault(t, "ok")
    return res


def failing_cases(xml_path):
    bad = set()
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError):
        return None
    for tc in root.iter("testcase"):
        if tc.find("failure") is not None or tc.find("error") is not None:
            bad.add("%s.%s" % (tc.get("classname", ""), tc.get("name", "")))
    return bad


def main(work):
    worse = []
    table = []
    notrun = []  # groups regrtest did not start on either side
    for vdir in sorted(glob.glob(os.path.join(work, "3.*")), key=lambda p: int(p.rsplit(".", 1)[1])):
        ver = os.path.basename(vdir)
        for plain_log in sorted(glob.glob(os.path.join(vdir, "plain.*.log"))):
            idx = plain_log.rsplit(".", 2)[1]
            prof_log = os.path.join(vdir, "profiled.%s.log" % idx)
            with open(plain_log, errors="replace") as f:
                text = f.read()
                a = outcomes(text)
            try:
                with open(prof_log, errors="replace") as f:
                    b = outcomes(f.read())
            except OSError:
                b = {}
            if not a and not b:
                last = [l for l in text.splitlines() if l.strip()][-1:] or ["(empty log)"]
                notrun.append("%s group %s: %s" % (ver, idx, last[0].strip()))
            for t in sorted(set(a) | set(b)):
                oa, ob = a.get(t, "noresult"), b.get(t, "noresult")
                table.append((ver, t, oa, ob))
                if RANK[ob] > RANK[oa]:
                    worse.append("%s %s: %s without the profiler, %s with it" % (ver, t, oa, ob))
            ca = failing_cases(os.path.join(vdir, "plain.%s.xml" % idx))
            cb = failing_cases(os.path.join(vdir, "profiled.%s.xml" % idx))
            if ca is not None and cb is not None:
                for c in sorted(cb - ca):
                    worse.append("%s case %s fails only with the profiler" % (ver, c))
    w = max([len(t) for _, t, _, _ in table] + [4])
    print("%-5s %-*s %-9s %-9s" % ("py", w, "test", "without", "with"))
    for ver, t, oa, ob in table:
        mark = "  <-- worse" if RANK[ob] > RANK[oa] else ""
        print("%-5s %-*s %-9s %-9s%s" % (ver, w, t, oa, ob, mark))
    if notrun:
        print("\nnot run on either side (regrtest did not start):")
        for line in notrun:
            print("  " + line)
    if worse:
        print("\nworse with the profiler:")
        for line in worse:
            print("  " + line)
        return 1
    print("\nno test or case is worse with the profiler")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
