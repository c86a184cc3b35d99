#!/usr/bin/env python3
"""An HTTPS server for MTA-STS policies in the probe test (tests/probe.rs).

It listens on ADDRESS:443 with CERT/KEY and answers GET by the Host header from ROUTES, a JSON file:
{"mta-sts.example.test": {"status": 200, "body": "version: STSv1\\n...", "headers": {"Location": "…"}}}.
A body may be given as {"repeat": "x", "times": 100000} for an oversized policy. Unknown hosts get 404.
Every request is appended to LOG as a JSON line. It prints "ready" once it listens.
"""
import argparse
import http.server
import json
import ssl
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--routes", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    with open(args.routes) as f:
        routes = json.load(f)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            host = (self.headers.get("Host") or "").split(":")[0].lower()
            with lock, open(args.log, "a") as f:
                f.write(json.dumps({"host": host, "path": self.path}) + "\n")
            route = routes.get(host) if self.path == "/.well-known/mta-sts.txt" else None
            if route is None:
                route = {"status": 404, "body": "not found"}
            body = route.get("body", "")
            if isinstance(body, dict):
                body = body["repeat"] * body["times"]
            data = body.encode()
            self.send_response(route.get("status", 200))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            for k, v in route.get("headers", {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer((args.address, args.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
