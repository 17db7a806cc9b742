#!/usr/bin/python3
"""kubesalt lab stand-in for kube-apiserver's health endpoint (docs/lab.md).

Serves GET /livez (200 "ok") over HTTPS on the kube-apiserver port with the node's own
rendered apiserver certificate (/etc/kubernetes/pki/apiserver.{crt,key}), once kubesalt
wrote it, so that keepalived's track script checks something real. Lab only.
"""

import http.server
import os
import ssl
import sys
import time

CERT = "/etc/kubernetes/pki/apiserver.crt"
KEY = "/etc/kubernetes/pki/apiserver.key"
PORT = int(os.environ.get("KUBESALT_LAB_APISERVER_PORT", "6443"))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path in ("/livez", "/readyz", "/healthz"):
            body = b"ok"
            self.send_response(200)
        else:
            body = b"lab stand-in: only /livez, /readyz and /healthz"
            self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return


def main():
    while not (os.path.exists(CERT) and os.path.exists(KEY)):
        time.sleep(1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERT, KEY)
    server = http.server.ThreadingHTTPServer(("", PORT), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"serving /livez on :{PORT} with {CERT}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
