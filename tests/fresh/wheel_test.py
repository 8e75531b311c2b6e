"""The wheel on a machine without build packages: serve, create a webhook, publish, and check
that a signed delivery arrives over HTTPS at a loopback receiver whose certificate is trusted
only through the system's CA store (no --ca-file).

Usage: wheel_test.py CERT KEY   (run with the venv's python, `brandhooks` on the PATH)
"""

import hashlib
import hmac
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

import brandhooks

TOKEN = "bh_fresh_wheel_test_admin_token"
received: list = []
arrived = threading.Event()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.append((self.headers, body))  # case-insensitive lookups
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        arrived.set()

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, body: object = None) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def main() -> int:
    cert, key = sys.argv[1], sys.argv[2]
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver.socket = context.wrap_socket(receiver.socket, server_side=True)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()

    port = free_port()
    api = f"http://127.0.0.1:{port}"
    db = os.path.join(tempfile.mkdtemp(), "fresh.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSL_CERT_")}
    server = subprocess.Popen(["brandhooks", "serve", "--port", str(port), "--db", db, "--admin-token", TOKEN,
                               "--allow-private"], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("wheel test: the server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)

        brand = str(uuid.uuid4())
        url = f"https://127.0.0.1:{receiver.server_address[1]}/in"
        hook = call("POST", f"{api}/brands/{brand}/webhooks", {"topic": "Deals", "url": url})["data"]
        published = call("POST", f"{api}/brands/{brand}/events",
                         {"topic": "Deals", "event": "Created", "payload": {"deal": 42}})["data"]
        assert published["deliveries"] == 1, published
        if not arrived.wait(60):
            deliveries = call("GET", f"{api}/brands/{brand}/webhooks/{hook['id']}/deliveries")
            print(f"wheel test: nothing arrived over HTTPS; deliveries: {deliveries}", file=sys.stderr)
            return 1
        headers, body = received[0]
        expected = hmac.new(bytes.fromhex(hook["key"]), body, hashlib.sha256).hexdigest()
        assert headers["X-Webhook-Signature"] == expected, "signature mismatch"
        brandhooks.verify(body, headers, hook["key"])  # the package's own check (Standard Webhooks too)
        assert json.loads(body)["payload"] == {"deal": 42}
        assert headers["User-Agent"] == f"brandhooks/{brandhooks.__version__}", headers["User-Agent"]
        # The portal's files ship in the wheel: the page and each module it loads are served.
        for path, kind in (("/portal", "text/html"), ("/portal/app.js", "text/javascript"),
                           ("/portal/api.js", "text/javascript"), ("/portal/activity.js", "text/javascript"),
                           ("/portal/charts.js", "text/javascript"), ("/portal/style.css", "text/css")):
            with urllib.request.urlopen(api + path, timeout=30) as response:
                assert response.headers["Content-Type"].startswith(kind) and response.read(), path
        print(f"wheel test: brandhooks {brandhooks.__version__}: a signed delivery arrived over HTTPS "
              f"(CA from the system store), signature verified; the portal is served")
        return 0
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    sys.exit(main())
