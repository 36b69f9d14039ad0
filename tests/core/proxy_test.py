"""Uploads through proxies, end to end, with the C demo (contprof_demo)
as the profiled program and everything else on 127.0.0.1:

- an HTTPS intake (self-signed certificate made here with openssl, trusted
  through the ca_file setting) reached through a local HTTP CONNECT proxy
  named by HTTPS_PROXY, with proxy authentication;
- the same with NO_PROXY matching the intake: straight through;
- a plain-HTTP intake through the upper-case HTTP_PROXY (forward proxy);
- the proxy_url setting with a wrong password: the proxy answers 407, the
  program still exits 0, the failure is one line, and the password is in
  no output.

Usage: proxy_test.py <contprof_demo>
"""
import base64
import http.server
import os
import select
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading

DEMO = sys.argv[1]
USER, PASSWORD = "prof", "s3cret-proxy-pw"


class Intake(http.server.BaseHTTPRequestHandler):
    """Records every upload (path, whether event and pprof parts came)."""
    log_message = lambda *a: None  # noqa: E731

    def do_GET(self):  # the start-up reachability check (GET /info)
        self.server.gets.append(self.path)
        self._answer(200)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.server.posts.append((self.path, b'name="event"' in body and b'name="auto.pprof"' in body))
        self._answer(200)

    def _answer(self, code):
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Proxy(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, need_auth):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.need_auth = need_auth
        self.seen = []  # (method, target, auth ok)


class ProxyHandler(socketserver.StreamRequestHandler):
    """CONNECT tunnels and absolute-URI forwarding, Basic auth optional."""

    def handle(self):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        hdrs = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
        want = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        ok = hdrs.get("proxy-authorization") == want
        self.server.seen.append((method, target, ok))
        if self.server.need_auth and not ok:
            self.request.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Proxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
            return
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up = socket.create_connection((host, int(port)))
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                up.sendall(rest)
            self._pipe(self.request, up)
        else:  # absolute URI: forward as origin-form, one request
            hostport = target.split("://", 1)[1].split("/", 1)[0]
            path = "/" + target.split("://", 1)[1].split("/", 1)[1]
            host, port = hostport.rsplit(":", 1)
            up = socket.create_connection((host, int(port)))
            kept = [l for l in lines[1:] if not l.lower().startswith(("proxy-", "connection"))]
            up.sendall(("%s %s HTTP/1.1\r\n%s\r\nConnection: close\r\n\r\n"
                        % (method, path, "\r\n".join(kept))).encode("latin-1") + rest)
            self._pipe(self.request, up)

    @staticmethod
    def _pipe(a, b):
        socks = [a, b]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 15)
                if not r:
                    return
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        finally:
            b.close()


def serve(server):
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return server


def intake(tls_dir=None):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Intake)
    srv.posts, srv.gets = [], []
    if tls_dir:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    return serve(srv)


def run_demo(env_extra, tmp):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update({"CONTPROF_UPLOAD_PERIOD": "60", "CONTPROF_LOG_LEVEL": "info", "CONTPROF_UPLOAD_RETRIES": "0",
                "CONTPROF_UPLOAD_TIMEOUT_MS": "10000"})
    env.update(env_extra)
    p = subprocess.run([DEMO, "0.5"], env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def check(cond, what, out=""):
    if not cond:
        print("FAIL: %s\n%s" % (what, out))
        sys.exit(1)
    print("ok: %s" % what)


def main():
    tmp = tempfile.mkdtemp(prefix="cp-proxy-")
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", os.path.join(tmp, "key.pem"), "-out", os.path.join(tmp, "cert.pem")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tls = intake(tmp)
        plain = intake()
        proxy = serve(Proxy(need_auth=True))
        pport = proxy.server_address[1]
        tls_url = "https://localhost:%d" % tls.server_address[1]
        base = {"CONTPROF_AGENT_URL": tls_url, "CONTPROF_CA_FILE": os.path.join(tmp, "cert.pem")}

        # 1. HTTPS intake through an authenticating CONNECT proxy (HTTPS_PROXY).
        env = dict(base, HTTPS_PROXY="http://%s:%s@127.0.0.1:%d" % (USER, PASSWORD, pport))
        rc, out = run_demo(env, tmp)
        check(rc == 0, "demo exits 0 through the CONNECT proxy", out)
        tunnels = [s for s in proxy.seen if s[0] == "CONNECT"]
        check(tunnels and all(t[1] == "localhost:%d" % tls.server_address[1] and t[2] for t in tunnels),
              "the proxy saw authenticated CONNECT localhost:%d" % tls.server_address[1], repr(proxy.seen))
        check(any(p[0] == "/profiling/v1/input" and p[1] for p in tls.posts),
              "the HTTPS intake got event + pprof through the tunnel", repr(tls.posts))
        check(PASSWORD not in out, "the proxy password is in no output", out)

        # 2. NO_PROXY matching the intake host: straight through.
        proxy.seen.clear()
        n = len(tls.posts)
        rc, out = run_demo(dict(env, NO_PROXY="example.org,localhost"), tmp)
        check(rc == 0 and not proxy.seen, "NO_PROXY=localhost bypasses the proxy", repr(proxy.seen) + out)
        check(len(tls.posts) > n, "the intake got the upload directly", repr(tls.posts))

        # 3. Plain HTTP intake through upper-case HTTP_PROXY (forwarding).
        proxy.seen.clear()
        url = "http://127.0.0.1:%d" % plain.server_address[1]
        rc, out = run_demo({"CONTPROF_AGENT_URL": url,
                            "HTTP_PROXY": "http://%s:%s@127.0.0.1:%d" % (USER, PASSWORD, pport)}, tmp)
        check(rc == 0 and any(s[0] == "POST" and s[1] == url + "/profiling/v1/input" and s[2] for s in proxy.seen),
              "HTTP_PROXY forwards POST %s/profiling/v1/input" % url, repr(proxy.seen) + out)
        check(any(p[1] for p in plain.posts), "the HTTP intake got event + pprof via the proxy", repr(plain.posts))

        # 4. proxy_url with a wrong password: 407, one clear line, exit 0.
        proxy.seen.clear()
        bad = "http://%s:wrong-%s@127.0.0.1:%d" % (USER, PASSWORD, pport)
        rc, out = run_demo(dict(base, CONTPROF_PROXY_URL=bad), tmp)
        check(rc == 0, "a refusing proxy does not change the exit status", out)
        check(proxy.seen and not any(s[2] for s in proxy.seen), "proxy_url beats the environment", repr(proxy.seen))
        check("upload to %s/profiling/v1/input failed" % tls_url in out, "the failed upload is reported", out)
        check(PASSWORD not in out, "neither password is in any output", out)
        print("proxy_test: passed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
