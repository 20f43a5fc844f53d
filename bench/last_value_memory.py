#!/usr/bin/env python3
"""Resident memory and start-up time of a stream of many topics.

  python3 bench/last_value_memory.py MANIFOLDD MANIFOLD [TOPICS] [ROUNDS]

For a stream on dev/* without a per-topic limit, then with
max_msgs_per_topic: 1: starts manifoldd on a fresh data directory (with the
stream in its configuration file), publishes ROUNDS messages of 16 bytes to
each of TOPICS topics (dev.0, dev.1, ... over its NATS port), waits until
the stream has stored them all, restarts manifoldd, and prints its resident
memory (VmRSS) before publishing, after, and after the restart, with the
time from exec to its "listening" line. Defaults: 1,000,000 topics, 2
rounds.
"""
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def start(manifoldd, config_path):
    began = time.time()
    p = subprocess.Popen(
        [manifoldd, "--config", config_path, "--listen", "127.0.0.1:0",
         "--nats", "127.0.0.1:0", "--log_level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    while line and "listening on" not in line:
        line = p.stdout.readline()
    if not line:
        sys.exit("manifoldd did not start")
    ready_ms = (time.time() - began) * 1000
    nats = re.search(r"([0-9.]+:[0-9]+) \(nats\)", line).group(1)
    tcp = re.search(r"([0-9.]+:[0-9]+) \(tcp\)", line).group(1)
    return p, nats, tcp, ready_ms


def publish(nats, topics, rounds):
    host, port = nats.split(":")
    s = socket.create_connection((host, int(port)))
    s.recv(4096)  # INFO
    s.sendall(b'CONNECT {"verbose":false}\r\n')
    for _ in range(rounds):
        batch = []
        for i in range(topics):
            batch.append(b"PUB dev.%d 16\r\n0123456789abcdef\r\n" % i)
            if len(batch) == 5000:
                s.sendall(b"".join(batch))
                batch = []
        s.sendall(b"".join(batch))
    s.sendall(b"PING\r\n")
    seen = b""
    while b"PONG" not in seen:
        seen += s.recv(65536)
    s.close()


def info(manifold, tcp):
    out = subprocess.run(
        [manifold, "--server", tcp, "--json", "stream", "info", "LV"],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main():
    manifoldd, manifold = sys.argv[1], sys.argv[2]
    topics = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    work = tempfile.mkdtemp(prefix="manifold-last-value-")
    try:
        for label, limit in (("no per-topic limit", ""),
                             ("max_msgs_per_topic: 1", " max_msgs_per_topic: 1")):
            data = f"{work}/data"
            shutil.rmtree(data, ignore_errors=True)
            config_path = f"{work}/manifoldd.textpb"
            with open(config_path, "w") as f:
                f.write(f'data_dir: "{data}"\n'
                        f'streams {{ name: "LV" topics: "dev/*"{limit} }}\n')
            p, nats, tcp, _ = start(manifoldd, config_path)
            before = rss_kib(p.pid)
            publish(nats, topics, rounds)
            for _ in range(600):
                if info(manifold, tcp)["last_seq"] == topics * rounds:
                    break
                time.sleep(0.1)
            after = rss_kib(p.pid)
            p.terminate()
            p.wait()
            p, nats, tcp, ready_ms = start(manifoldd, config_path)
            restarted = rss_kib(p.pid)
            held = info(manifold, tcp)["messages"]
            p.terminate()
            p.wait()
            print(f"{label}: {topics} topics x {rounds}, {held} held; RSS "
                  f"{before // 1024} MiB at start, {after // 1024} MiB after "
                  f"publishing, {restarted // 1024} MiB after a restart "
                  f"(listening {ready_ms:.0f} ms after exec)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
