#!/usr/bin/python3
"""Herald's resident memory per idle, helloed WebSocket client, over TLS or plain TCP (herald-bench
does not speak TLS). Starts its own herald on 127.0.0.1:0, opens --connections clients with Debian's
python3-websockets, says hello on each, waits, and prints one JSON line.

  scripts/tls-idle-rss.py --herald build/herald --connections 2000          # wss://, a fresh cert
  scripts/tls-idle-rss.py --herald build/herald --connections 2000 --plain  # ws://, for comparison
"""

import argparse
import asyncio
import json
import os
import re
import resource
import ssl
import subprocess
import sys
import tempfile
import time

import websockets


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def make_cert(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem", "-days", "2", "-subj", "/CN=rss",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return f"{d}/cert.pem", f"{d}/key.pem"


async def hold(url, n, ctx, inflight):
    sem = asyncio.Semaphore(inflight)
    conns = []

    async def one(i):
        async with sem:
            ws = await websockets.connect(url, ssl=ctx, ping_interval=None, compression=None, open_timeout=30)
            await ws.send(json.dumps({"type": "hello", "client_id": f"rss-{i}"}))
            assert json.loads(await ws.recv())["type"] == "welcome"
            conns.append(ws)

    await asyncio.gather(*(one(i) for i in range(n)))
    return conns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default="build/herald")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--plain", action="store_true", help="ws:// instead of wss://")
    ap.add_argument("--settle", type=float, default=1.0)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as d:
        args = [a.herald, "--listen", "127.0.0.1:0", "--threads", "2", "--heartbeat-ms", "600000"]
        ctx = None
        if not a.plain:
            cert, key = make_cert(d)
            args += ["--tls-cert", cert, "--tls-key", key]
            ctx = ssl.create_default_context(cafile=cert)
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            port = None
            for line in p.stderr:
                m = re.search(r"(?<!API )listening on 127\.0\.0\.1:(\d+)", line)
                if m:
                    port = int(m.group(1))
                    break
            time.sleep(a.settle)
            before = rss_bytes(p.pid)
            url = f"{'ws' if a.plain else 'wss'}://127.0.0.1:{port}/v1/ws"
            loop = asyncio.new_event_loop()
            t0 = time.monotonic()
            conns = loop.run_until_complete(hold(url, a.connections, ctx, 64))
            took = time.monotonic() - t0
            time.sleep(a.settle)
            after = rss_bytes(p.pid)
            print(json.dumps({"transport": "plain" if a.plain else "tls", "connections": len(conns),
                              "connect_seconds": round(took, 2), "rss_before_bytes": before, "rss_after_bytes": after,
                              "bytes_per_connection": round((after - before) / len(conns), 1)}))
            async def close_all():
                await asyncio.gather(*(c.close() for c in conns))

            loop.run_until_complete(close_all())
        finally:
            p.terminate()
            p.wait(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
