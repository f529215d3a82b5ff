"""A stand-in for Dolby.io's token endpoint on loopback, for the demo: it answers
``POST /v1/oauth2/token`` as Dolby.io documents it (HTTP Basic with the app's key and secret,
``grant_type=client_credentials``) with a token of its own making, and 401 to anything else.
The key and secret it accepts are CONSUMER_KEY and CONSUMER_SECRET of its environment.

    python scripts/stand-in-upstream.py [PORT]     # prints TOKEN_URL=http://127.0.0.1:PORT/...
"""

import base64
import json
import os
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/v1/oauth2/token"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        expected = "Basic " + base64.b64encode(
            f"{os.environ['CONSUMER_KEY']}:{os.environ['CONSUMER_SECRET']}".encode()
        ).decode()
        if self.path != PATH or self.headers.get("Authorization") != expected or form != "grant_type=client_credentials":
            return self.answer(401, {"error": "invalid_client"})
        self.answer(200, {
            "token_type": "Bearer",
            "access_token": "stand-in-" + secrets.token_urlsafe(24),
            "refresh_token": "stand-in-refresh-" + secrets.token_urlsafe(12),
            "expires_in": 3600,
        })

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    print(f"TOKEN_URL=http://127.0.0.1:{server.server_address[1]}{PATH}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
