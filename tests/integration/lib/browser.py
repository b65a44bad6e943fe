#!/usr/bin/env python3
"""A headless chromium driven through the DevTools protocol, for the map test.

    browser.py URL SCREENSHOT STEPS.json

Starts chromium (headless, its own profile), opens URL and runs the steps,
each printing one line `NAME=VALUE` on stdout:
  {"wait": JS, "name": N, "timeout": S}   until JS is truthy; prints N=seconds or N=timeout
  {"eval": JS, "name": N}                 prints N=<JSON of the value>
  {"click": CSS, "name": N}               a real mouse click (Input.dispatchMouseEvent)
                                          at the centre of the element; N=ok or N=missing
  {"type": CSS, "text": T, "name": N}     sets an input's value
  {"screenshot": PATH, "name": N}         a PNG of the page
Stops chromium at the end, whatever happened.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # Debian: python3-websocket

url, shot, steps_file = sys.argv[1], sys.argv[2], sys.argv[3]
steps = json.load(open(steps_file))
profile = tempfile.mkdtemp(prefix="georeg-chromium-")
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
# The binary itself, not Debian's /usr/bin/chromium wrapper script: its
# processes are then this one's to stop.
browser = "/usr/lib/chromium/chromium" if os.path.exists("/usr/lib/chromium/chromium") else shutil.which("chromium")
proc = subprocess.Popen([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-extensions", "--disable-background-networking", "--window-size=1280,1400",
                         "--user-data-dir=" + profile, "--remote-debugging-address=127.0.0.1",
                         "--remote-debugging-port=%d" % port, "about:blank"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
ws = None
next_id = 0


def call(method, **params):
    global next_id
    next_id += 1
    ws.send(json.dumps({"id": next_id, "method": method, "params": params}))
    while True:
        m = json.loads(ws.recv())
        if m.get("id") == next_id:
            if "error" in m:
                raise RuntimeError("%s: %s" % (method, m["error"]))
            return m.get("result", {})


def evaluate(js):
    r = call("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in r:
        return None
    return r.get("result", {}).get("value")


try:
    for _ in range(150):
        try:
            targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=1))
            page = [t for t in targets if t.get("type") == "page"]
            if page:
                ws = websocket.create_connection(page[0]["webSocketDebuggerUrl"], timeout=30)
                break
        except OSError:
            pass
        time.sleep(0.2)
    if ws is None:
        print("browser=not started")
        sys.exit(1)
    print("browser=started", flush=True)
    call("Page.enable")
    call("Page.navigate", url=url)
    for st in steps:
        name = st["name"]
        if "wait" in st:
            start = time.time()
            value = "timeout"
            while time.time() - start < st.get("timeout", 20):
                if evaluate(st["wait"]):
                    value = "%.1f" % (time.time() - start)
                    break
                time.sleep(0.2)
        elif "eval" in st:
            value = json.dumps(evaluate(st["eval"]), sort_keys=True)
        elif "click" in st:
            box = evaluate("(() => { const e = document.querySelector(%s); if (!e) return null;"
                           " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
                           " return [r.left + r.width / 2, r.top + r.height / 2]; })()" % json.dumps(st["click"]))
            if not box:
                value = "missing"
            else:
                for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                    call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)
                value = "ok"
        elif "type" in st:
            ok = evaluate("(() => { const e = document.querySelector(%s); if (!e) return false; e.value = %s;"
                          " return true; })()" % (json.dumps(st["type"]), json.dumps(st["text"])))
            value = "ok" if ok else "missing"
        elif "screenshot" in st:
            data = call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
            open(st["screenshot"], "wb").write(base64.b64decode(data))
            value = "ok"
        print("%s=%s" % (name, value), flush=True)
finally:
    if ws:
        ws.close()
    # Chromium's helpers (zygote, GPU, renderers) share its process group.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()
    # Some helpers (crashpad) leave the group: every process naming the
    # profile directory is waited for, then killed.
    def leftovers():
        pids = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if profile.encode() in open("/proc/%s/cmdline" % d, "rb").read():
                        pids.append(int(d))
                except OSError:
                    pass
        return pids
    for attempt in range(60):
        left = leftovers()
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGTERM if attempt < 30 else signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    shutil.rmtree(profile, ignore_errors=True)
