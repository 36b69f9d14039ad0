"""Uploads to a Pyroscope-API server, checked as Pyroscope's ingest API
defines the request: POST /ingest with name=<app>{labels}, from/until (unix
seconds, from <= until), format=pprof in the query; multipart/form-data with
a "profile" part (gzip'd pprof) and a "sample_type_config" part (JSON naming
every sample type of the profile); Basic auth and X-Scope-OrgID when set.

1. contprof_demo with pyroscope_url, basic auth and a tenant;
2. a server that answers 503 then 200: retried; one that answers 400: not;
3. with the front ends given: a Python program and a JVM, each uploading to
   the Pyroscope server and to the explorer (agent_url) at the same time.

Usage: pyroscope_test.py <contprof_demo> [<python> <pkg_dir> <java> <agent> <classes> <explorer>]
"""
import base64
import cgi
import gzip
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

DEMO = sys.argv[1]
FRONT = sys.argv[2:8] if len(sys.argv) >= 8 else None


class Pyroscope(http.server.BaseHTTPRequestHandler):
    log_message = lambda *a: None  # noqa: E731

    def do_GET(self):  # /ready (the start-up check)
        self.send_response(200 if self.path == "/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        srv = self.server
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        problems = []
        if u.path != "/ingest":
            problems.append("path %s" % u.path)
        for k in ("name", "from", "until", "format"):
            if k not in q:
                problems.append("no %s" % k)
        if q.get("format") != ["pprof"]:
            problems.append("format %s" % q.get("format"))
        try:
            if int(q["from"][0]) > int(q["until"][0]) or int(q["from"][0]) < 1e9:
                problems.append("from/until %s %s" % (q["from"], q["until"]))
        except (KeyError, ValueError):
            problems.append("from/until not integers")
        env = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body))}
        parts = {}
        if not env["CONTENT_TYPE"].startswith("multipart/form-data"):
            problems.append("content type %s" % env["CONTENT_TYPE"])
        else:
            fs = cgi.FieldStorage(fp=io.BytesIO(body), environ=env, keep_blank_values=True)
            parts = {k: fs[k].value for k in fs.keys()}
        prof = parts.get("profile", b"")
        try:
            raw = gzip.decompress(prof)
        except OSError:
            raw = b""
            problems.append("profile part is not gzip'd pprof")
        try:
            cfg = json.loads(parts.get("sample_type_config", b"{}"))
        except ValueError:
            cfg = {}
            problems.append("sample_type_config is not JSON")
        for t in (b"cpu-time", b"wall-time", b"alloc-space", b"heap-space"):
            if t in raw and t.decode() not in cfg:
                problems.append("sample_type_config lacks %s" % t.decode())
        srv.requests.append({"name": q.get("name", [""])[0], "auth": self.headers.get("Authorization"),
                             "tenant": self.headers.get("X-Scope-OrgID"), "problems": problems,
                             "types": [t for t in cfg if t.encode() in raw]})
        code = srv.answers.pop(0) if srv.answers else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


def server(answers=()):
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pyroscope)
    s.requests, s.answers = [], list(answers)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


def check(cond, what, detail=""):
    if not cond:
        print("FAIL: %s\n%s" % (what, detail))
        sys.exit(1)
    print("ok: %s" % what)


def clean_env(extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONTPROF_", "DD_", "PYROSCOPE_")) and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(extra)
    return env


def run(cmd, env, cwd):
    p = subprocess.run(cmd, env=clean_env(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=180)
    return p.returncode, p.stdout + p.stderr


def main():
    tmp = tempfile.mkdtemp(prefix="cp-pyro-")
    try:
        # 1. the request, exactly; auth and tenant
        s = server()
        url = "http://127.0.0.1:%d" % s.server_address[1]
        rc, out = run([DEMO, "1.2"], {"CONTPROF_PYROSCOPE_URL": url + "/", "CONTPROF_ENV": "prod",
                                      "CONTPROF_VERSION": "1.2.3", "CONTPROF_TAGS": "team:core,zone:eu-1",
                                      "CONTPROF_PYROSCOPE_BASIC_AUTH": "alice:pa55word",
                                      "CONTPROF_PYROSCOPE_TENANT": "tenant-7", "CONTPROF_UPLOAD_PERIOD": "60",
                                      "CONTPROF_LOG_LEVEL": "debug"}, tmp)
        check(rc == 0 and s.requests, "the demo uploads to Pyroscope", out)
        r = s.requests[0]
        check(not r["problems"], "the request is Pyroscope's ingest API", repr(r))
        name = r["name"]
        check(name.startswith("contprof-demo{") and name.endswith("}"), "name is <service>{labels}: %s" % name)
        labels = dict(kv.split("=", 1) for kv in name[name.index("{") + 1:-1].split(","))
        check(labels.get("env") == "prod" and labels.get("version") == "1.2.3" and labels.get("team") == "core"
              and labels.get("zone") == "eu-1" and "host" in labels and "language" in labels,
              "labels from the tags: %s" % labels)
        check("runtime-id" not in labels and "process_id" not in labels, "no per-process labels")
        check(r["auth"] == "Basic " + base64.b64encode(b"alice:pa55word").decode(), "basic auth", repr(r))
        check(r["tenant"] == "tenant-7", "X-Scope-OrgID tenant", repr(r))
        check(set(r["types"]) >= {"cpu-time", "wall-time", "alloc-space"}, "sample types configured: %s" % r["types"])
        check("pa55word" not in out, "the password is in no output", out)
        check("sent to Pyroscope at %s" % url in out, "the exit line names Pyroscope", out)

        # 2. 5xx retried, 4xx not
        s2 = server([503, 200])
        rc, out = run([DEMO, "0.5"], {"CONTPROF_PYROSCOPE_URL": "http://127.0.0.1:%d" % s2.server_address[1],
                                      "CONTPROF_UPLOAD_PERIOD": "60"}, tmp)
        check(rc == 0 and len(s2.requests) == 2, "503 then 200: retried once (%d requests)" % len(s2.requests), out)
        s3 = server([400, 400, 400])
        rc, out = run([DEMO, "0.5"], {"CONTPROF_PYROSCOPE_URL": "http://127.0.0.1:%d" % s3.server_address[1],
                                      "CONTPROF_UPLOAD_PERIOD": "60"}, tmp)
        check(rc == 0 and len(s3.requests) == 1 and "HTTP 400 (not retried)" in out, "400: not retried", out)
        check("no profile sent to Pyroscope" in out, "the exit line says nothing was sent", out)

        if FRONT:
            both(tmp, *FRONT)
        print("pyroscope_test: passed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def both(tmp, python, pkg_dir, java, agent, classes, explorer):
    """Both front ends upload to Pyroscope and to the explorer at once."""
    s = server()
    purl = "http://127.0.0.1:%d" % s.server_address[1]
    port_file = os.path.join(tmp, "port")
    ex = subprocess.Popen([explorer, "--listen", "127.0.0.1:0", "--data", os.path.join(tmp, "ex"),
                           "--port-file", port_file], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        eurl = "http://127.0.0.1:%s" % open(port_file).read().strip()
        with open(os.path.join(tmp, "app.py"), "w") as f:
            f.write("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5:\n"
                    "    sum(i * i for i in range(300))\n")
        env = {"PYTHONPATH": pkg_dir, "CONTPROF_PYROSCOPE_URL": purl, "CONTPROF_AGENT_URL": eurl,
               "CONTPROF_SERVICE": "both-py"}
        rc, out = run([python, "-m", "contprof", "app.py"], env, tmp)
        check(rc == 0, "python -m contprof with two destinations", out)
        env = {"CONTPROF_PYROSCOPE_URL": purl, "CONTPROF_AGENT_URL": eurl}
        rc, out = run([java, "-agentpath:%s=service=both-jvm" % agent, "-cp", classes, "JvmTarget", "cpu", "0.5"],
                      env, tmp)
        check(rc == 0, "java -agentpath with two destinations", out)
        names = [r["name"].split("{")[0] for r in s.requests if not r["problems"]]
        check("both-py" in names and "both-jvm" in names, "Pyroscope got both front ends: %s" % names,
              repr(s.requests))
        listed = json.load(urllib.request.urlopen(eurl + "/api/profiles?limit=50"))
        text = json.dumps(listed)
        check("both-py" in text and "both-jvm" in text, "the explorer lists both front ends", text[:2000])
    finally:
        ex.terminate()
        ex.wait(timeout=10)


if __name__ == "__main__":
    main()
