"""GET /docs in headless Chromium: a screenshot that shows content, and the rendered page lists
the main routes of the API.

Usage: docs_check.py BASE_URL SCREENSHOT_PATH   (BASE_URL like http://127.0.0.1:8080)
"""
import html
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

BASE, SHOT = sys.argv[1].rstrip("/"), sys.argv[2]
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tempfile.mkdtemp()}", "--window-size=1400,2000"]
MAIN_ROUTES = [
    ("GET", "/api/v1/departments"), ("GET", "/api/v1/departments/{id}"),
    ("GET", "/api/v1/departments/{id}/availability"), ("POST", "/api/v1/appointments"),
    ("GET", "/api/v1/appointments"), ("GET", "/api/v1/appointments/{id}"),
    ("DELETE", "/api/v1/appointments/{id}"), ("PATCH", "/api/v1/appointments/{id}"),
    ("GET", "/api/v1/credits"), ("POST", "/api/v1/webhooks"), ("GET", "/api/v1/events"),
]
results = []


def check(name, condition, detail=""):
    results.append(condition)
    print(("ok     " if condition else "FAILED ") + name + ("" if condition else f": {detail}"))


subprocess.run(CHROMIUM + [f"--screenshot={SHOT}", f"{BASE}/docs"], check=True, capture_output=True, timeout=120)
dom = subprocess.run(CHROMIUM + ["--dump-dom", f"{BASE}/docs"], check=True, capture_output=True, timeout=120).stdout.decode()

# The screenshot: a PNG of the window's size whose pixels are not one flat colour.
with open(SHOT, "rb") as f:
    png = f.read()
width, height = struct.unpack(">II", png[16:24])
check("the screenshot is a PNG of the window", png[:8] == b"\x89PNG\r\n\x1a\n" and (width, height) == (1400, 2000), (width, height))
chunks, at = [], 8
while at < len(png):
    length, kind = struct.unpack(">I4s", png[at:at + 8])
    if kind == b"IDAT":
        chunks.append(png[at + 8:at + 8 + length])
    at += 12 + length
pixels = zlib.decompress(b"".join(chunks))
check("the screenshot shows content", len(set(pixels)) > 32 and os.path.getsize(SHOT) > 30_000,
      f"{len(set(pixels))} distinct bytes, {os.path.getsize(SHOT)} bytes")

# The rendered page: every main route with its method, and nothing loaded from elsewhere.
text = html.unescape(re.sub(r"<[^>]+>", " ", dom))
text = re.sub(r"\s+", " ", text)
for method, path in MAIN_ROUTES:
    check(f"the page shows {method} {path}", f"{method} {path}" in text)
check("the page loads no script or remote asset", "<script" not in dom and not re.search(r'(src|href)="https?://', dom))

passed, failed = results.count(True), results.count(False)
print(f"docs: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
