#!/usr/bin/python3
# A toy service for tests/integration/test_mutants.sh, listening on BIND:PORT: GET /sum?a=A&b=B
# answers A+B, GET /count how many requests it has answered. FAULTLINE_BUG (comma-separated)
# makes it misbehave on purpose: off-by-one (every sum is one too many), garbage (/count
# answers a word instead of a number), unchecked (a defect no scenario looks at: the
# X-Toy header goes missing).
import http.server
import os
import urllib.parse

BUGS = set(b for b in os.environ.get("FAULTLINE_BUG", "").split(",") if b)
served = 0


class Toy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global served
        served += 1
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/sum":
            body = str(int(q["a"][0]) + int(q["b"][0]) + (1 if "off-by-one" in BUGS else 0))
        elif url.path == "/count":
            body = "many" if "garbage" in BUGS else str(served)
        else:
            self.send_error(404)
            return
        self.send_response(200)
        if "unchecked" not in BUGS:
            self.send_header("X-Toy", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, fmt, *args):
        pass


print("toy: FAULTLINE_BUG=%s" % ",".join(sorted(BUGS)), flush=True)
http.server.HTTPServer((os.environ["BIND"], int(os.environ["PORT"])), Toy).serve_forever()
