#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Regenerates the captures that tests/request_props.rs reads: the first
bytes that real clients (curl 7.88, OpenSSL 3.0 s_client) send on a new
connection. Run from this directory; needs curl and openssl."""

import socket
import sys
import subprocess
import threading
import time


def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return s


def recv_all(c, rec, forward=None):
    c.settimeout(1.0)
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            rec.append(d)
            if forward:
                forward.sendall(d)
    except OSError:
        pass


def capture(cmd, port, name):
    """What `cmd` sends to a server that never answers."""
    s = listener(port)
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c, _ = s.accept()
    rec = []
    recv_all(c, rec)
    c.close(), p.kill(), p.wait(), s.close()
    open(name, "wb").write(b"".join(rec))


def wait_for(cond, what, timeout=10):
    """Until cond() is true (polled), at most timeout seconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            sys.exit("capture: no %s within %d s" % (what, timeout))
        time.sleep(0.02)


def connectable(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def capture_relayed(cmd, port, server_port, name):
    """What `cmd` sends to a real server (through a recording relay)."""
    s = listener(port)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c, _ = s.accept()
    u = socket.create_connection(("127.0.0.1", server_port))
    rec = []
    back = []
    up = threading.Thread(target=recv_all, args=(c, rec, u))
    down = threading.Thread(target=recv_all, args=(u, back, c))
    up.start(), down.start()
    # The request goes once the server's handshake reached the client.
    wait_for(lambda: back, "the server's first bytes")
    p.stdin.write(b"GET / HTTP/1.0\r\n\r\n")
    p.stdin.close()
    p.wait(timeout=5)
    up.join(), down.join()
    c.close(), u.close(), s.close()
    open(name, "wb").write(b"".join(rec))


capture(["curl", "-s", "-m", "2", "-b", "session=abc123; theme=dark",
         "http://127.0.0.1:18080/api/v1/items?id=7"], 18080, "curl_http1.bin")
capture(["curl", "-s", "-m", "2", "--http2-prior-knowledge",
         "http://127.0.0.1:18081/"], 18081, "curl_h2c.bin")
capture(["curl", "-s", "-m", "2", "-k", "https://localhost:18084/"],
        18084, "curl_tls13.bin")
capture(["openssl", "s_client", "-connect", "127.0.0.1:18082",
         "-servername", "www.example.com", "-tls1_3"], 18082, "openssl_tls13.bin")
capture(["openssl", "s_client", "-connect", "127.0.0.1:18083",
         "-noservername", "-tls1_2"], 18083, "openssl_tls12_nosni.bin")

# A TLS 1.2 session resumed with a ticket: a first handshake with a real
# server saves the session, the second offers it.
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                "-keyout", "/tmp/k.pem", "-out", "/tmp/c.pem", "-days", "2",
                "-subj", "/CN=localhost"], check=True, capture_output=True)
srv = subprocess.Popen(["openssl", "s_server", "-accept", "18090", "-cert",
                        "/tmp/c.pem", "-key", "/tmp/k.pem", "-tls1_2", "-www"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_for(lambda: connectable(18090), "s_server on 18090")
client = ["openssl", "s_client", "-connect", "127.0.0.1:18091",
          "-servername", "shop.example.org", "-tls1_2"]
capture_relayed(client + ["-sess_out", "/tmp/sess.pem"], 18091, 18090,
                "openssl_tls12_stream.bin")
capture_relayed(client + ["-sess_in", "/tmp/sess.pem"], 18091, 18090,
                "openssl_tls12_resume.bin")
srv.kill()
