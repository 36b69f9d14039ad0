"""A small service-like program to try contprof on:

    python -m contprof demo/python/app.py      (or demo.py, the same program)

It runs for about 6 seconds: two named worker threads serve generated
"requests" (CPU split by design: render_page ~60%, parse_request
~30%, checksum ~10% of the workers' CPU), a "db-poller" thread mostly
sleeps (wall time, almost no CPU), and a cache keeps growing (allocations
and live heap in build_cache_entry). Then view the profile with
`go tool pprof -top profiles/<file>.pprof.gz`.
"""
import hashlib
import json
import threading
import time

CACHE = {}
CACHE_LOCK = threading.Lock()


def parse_request(raw):
    """~30% of worker CPU: JSON decoding and validation."""
    for _ in range(3):
        doc = json.loads(raw)
    return doc


def render_page(doc):
    """~60% of worker CPU: string building."""
    out = []
    for _ in range(10):
        out = ["<li>%s=%s</li>" % (k, v) for k, v in doc.items()]
    return "".join(out)


def checksum(page):
    """~10% of worker CPU: hashing (C code, charged to this frame)."""
    h = hashlib.sha256()
    for _ in range(9):
        h.update(page.encode())
    return h.hexdigest()


def build_cache_entry(key, page):
    """Allocations that stay alive (up to ~16 MB): visible in heap-space."""
    entry = [page] * 4 + [bytearray(16384)]
    with CACHE_LOCK:  # workers share the cache: evict and insert atomically
        if len(CACHE) >= 1000:
            del CACHE[next(iter(CACHE))]  # oldest first
        CACHE[key] = entry


def handle(req_id, raw):
    doc = parse_request(raw)
    page = render_page(doc)
    digest = checksum(page)
    if req_id % 10 == 0:
        build_cache_entry(req_id, page)
    return digest


def worker(raw, deadline, served):
    """Serves generated requests until the deadline."""
    req = 0
    while time.monotonic() < deadline:
        handle(req, raw)
        req += 1
    served.append(req)


def db_poller(stop):
    """Sleeps between polls: shows up in wall time, not CPU."""
    while not stop.is_set():
        time.sleep(0.05)


def main(seconds=6.0):
    raw = json.dumps({"field%d" % i: "value-%d" % i for i in range(60)})
    deadline, served, stop = time.monotonic() + seconds, [], threading.Event()
    workers = [threading.Thread(target=worker, args=(raw, deadline, served), name="worker-%d" % i)
               for i in range(2)]
    poller = threading.Thread(target=db_poller, args=(stop,), name="db-poller")
    for t in workers + [poller]:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    poller.join()
    print("served %d requests, cache holds %d entries" % (sum(served), len(CACHE)))


if __name__ == "__main__":
    import os
    main(float(os.environ.get("DEMO_SECONDS", "6")))
