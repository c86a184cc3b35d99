#!/usr/bin/env python3
"""A receiving SMTP server for the delivery test (tests/delivery.rs).

It listens on ADDRESS:PORT and records, as JSON lines in LOG, every session: whether STARTTLS was used,
the TLS version, a failed handshake, and every message accepted (with whether it came encrypted).
Modes:
  tls     offers STARTTLS with CERT/KEY (TLS 1.2 and newer)
  oldtls  offers STARTTLS, but only TLS 1.1 with RSA key exchange (AES128-SHA): a client without a
          TLS 1.2 floor (Postfix 3.7 with OpenSSL 3 included) delivers to it over TLS 1.1
  plain   offers no STARTTLS
  cbc12   offers STARTTLS, but only TLS 1.2 with CBC suites (compliant; rustls cannot talk to it)
  greylist  answers the connection with 421 (temporarily refused) and closes it
CERT may hold the chain after the server's certificate (or leave out the intermediate, on purpose).
Every server offers SMTPUTF8. Messages are recorded with their text, so a delay notice can be read, and
each message event also carries the client's HELO/EHLO name, the envelope sender and the DKIM-Signature
header (unfolded; null when absent). It prints "ready" once it listens, and runs until killed. With --many FILE, one process runs every
server the file lists (each on its own address).
"""
import argparse
import json
import socket
import ssl
import threading
import warnings

# TLS 1.1 is the point of the oldtls mode.
warnings.filterwarnings("ignore", category=DeprecationWarning)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address")
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--name")
    ap.add_argument("--mode", choices=["tls", "oldtls", "plain", "cbc12", "greylist"])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--log", required=True)
    # Many servers in one process (the probe test's world): a JSON list of objects with the keys
    # address, name, mode and optionally port, cert, key, banner (greylist: the reply to send).
    ap.add_argument("--many")
    args = ap.parse_args()
    lock = threading.Lock()
    if args.many:
        with open(args.many) as f:
            servers = json.load(f)
    else:
        if not (args.address and args.name and args.mode):
            ap.error("--address, --name and --mode are required without --many")
        servers = [{"address": args.address, "port": args.port, "name": args.name,
                    "mode": args.mode, "cert": args.cert, "key": args.key}]
    listeners = [listen(s, args.log, lock) for s in servers]
    print("ready", flush=True)
    threads = [threading.Thread(target=serve, args=l, daemon=True) for l in listeners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def listen(server, log, lock):
    """Binds one server's socket and returns what serve() needs."""
    mode, name = server["mode"], server["name"]
    context = None
    if mode not in ("plain", "greylist"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if mode == "oldtls":
            context.set_ciphers("AES128-SHA:@SECLEVEL=0")
            context.minimum_version = ssl.TLSVersion.TLSv1_1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        elif mode == "cbc12":
            context.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA256")
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(server["cert"], server["key"])

    def record(event):
        event["server"] = name
        with lock, open(log, "a") as f:
            f.write(json.dumps(event) + "\n")

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((server["address"], server.get("port") or 25))
    listener.listen(64)
    # A greylist server's whole reply may be given (e.g. hostile text for the probe's escaping test).
    banner = server.get("banner", "").encode()
    return listener, context, mode, name, record, banner


def serve(listener, context, mode, name, record, banner):
    while True:
        conn, _ = listener.accept()
        if mode == "greylist":
            record({"event": "connect"})
            try:
                conn.sendall(banner or (b"421 4.7.0 mx." + name.encode() + b".test try again later\r\n"))
            finally:
                conn.close()
            continue
        threading.Thread(target=session, args=(conn, context, name, record), daemon=True).start()


def session(conn, context, name, record):
    conn.settimeout(30)
    stream = conn
    encrypted, version = False, None
    rcpts = []
    helo, mail_from = None, None
    reader = stream.makefile("rb")

    def send(line):
        stream.sendall((line + "\r\n").encode())

    record({"event": "connect"})
    try:
        send(f"220 mx.{name}.test ESMTP delivery-test receiver")
        while True:
            raw = reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                helo = line.split(" ", 1)[1].strip() if " " in line else ""
                send(f"250-mx.{name}.test")
                if context is not None and not encrypted:
                    send("250-STARTTLS")
                send("250 SMTPUTF8")
            elif verb == "STARTTLS" and context is not None and not encrypted:
                send("220 ready to start TLS")
                try:
                    stream = context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    record({"event": "tls_failed", "error": str(e)})
                    return
                encrypted, version = True, stream.version()
                record({"event": "tls", "version": version})
                reader = stream.makefile("rb")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[-1].strip().strip("<>").lower())
                send("250 ok")
            elif verb in ("MAIL", "RSET", "NOOP"):
                if verb != "NOOP":
                    rcpts = []
                if verb == "MAIL":
                    mail_from = line.split(":", 1)[-1].strip().split(" ")[0].strip("<>")
                send("250 ok")
            elif verb == "DATA":
                send("354 go ahead")
                body = []
                while True:
                    raw = reader.readline()
                    if not raw or raw in (b".\r\n", b".\n"):
                        break
                    body.append(raw)
                text = b"".join(body).decode("utf-8", "replace")
                record({"event": "message", "encrypted": encrypted, "tls_version": version,
                        "rcpt": rcpts, "bytes": sum(len(b) for b in body), "text": text[:20000],
                        "helo": helo, "mail_from": mail_from, "dkim_signature": dkim_signature(body)})
                send("250 accepted")
            elif verb == "QUIT":
                send("221 bye")
                return
            else:
                send("502 not implemented")
    except (OSError, ssl.SSLError) as e:
        record({"event": "session_error", "error": str(e)})
    finally:
        try:
            stream.close()
        except OSError:
            pass


def dkim_signature(body):
    """The first DKIM-Signature header of a message (its lines as received), unfolded, or None."""
    value = None
    for raw in body:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line == "":
            break
        if value is not None:
            if line[:1] in (" ", "\t"):
                value += " " + line.strip()
                continue
            break
        if line.lower().startswith("dkim-signature:"):
            value = line.split(":", 1)[1].strip()
    return value


if __name__ == "__main__":
    main()
