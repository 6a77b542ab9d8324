import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

host, port = sys.argv[1], int(sys.argv[2])
proc = subprocess.Popen(
    [sys.executable, "-m", "MedFusionLib", "app", "--sample", "--host", host, "--port", str(port)],
    stderr=subprocess.PIPE,
    stdout=subprocess.DEVNULL,
    encoding="utf-8",
    errors="replace",
)
line = ""
while "serving" not in line:
    line = proc.stderr.readline()
    if not line and proc.poll() is not None:
        break
for _ in range(240):
    try:
        socket.create_connection((host, port), 1).close()
        break
    except OSError:
        time.sleep(0.5)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


opener = urllib.request.build_opener(NoRedirect)


def get(url, headers={}):
    try:
        return opener.open(urllib.request.Request(url, headers=headers), timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code


m = re.search(r"token=(\S+)", line)
out = {
    "line": line.strip(),
    "bare": get(f"http://{host}:{port}/"),
    "index": get(f"http://{host}:{port}/index.html"),
    "wrong": get(f"http://{host}:{port}/?token=nope"),
    "ws": get(f"http://{host}:{port}/ws"),
}
if m:
    out["with_token"] = get(f"http://{host}:{port}/index.html?token={m.group(1)}")
    out["cookie"] = get(f"http://{host}:{port}/index.html", {"Cookie": f"medfusion_token={m.group(1)}"})
proc.terminate()
proc.wait(20)
print(json.dumps(out))
