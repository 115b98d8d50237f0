#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for the notification tests.

Every message received is written to OUT/NNNN.eml with the envelope and the
authenticated user prepended as X-Test-* headers. Prints READY once it
listens; runs until killed.

  smtp_server.py --port P --out DIR [--mode plain|starttls|tls]
                 [--cert FILE --key FILE] [--auth USER:PASSWORD]
"""
import argparse
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saver:
    def __init__(self, out, implicit_tls):
        self.out = out
        self.implicit_tls = implicit_tls
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        user = b""
        if session.auth_data is not None and isinstance(session.auth_data, LoginPassword):
            user = session.auth_data.login
        head = (
            b"X-Test-Mail-From: " + envelope.mail_from.encode() + b"\r\n"
            + b"X-Test-Rcpt-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n"
            + b"X-Test-Auth-User: " + user + b"\r\n"
            + b"X-Test-TLS: " + (b"yes" if (session.ssl is not None or self.implicit_tls) else b"no") + b"\r\n"
        )
        path = os.path.join(self.out, "%04d.eml" % n)
        with open(path + ".tmp", "wb") as f:
            f.write(head + envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 Message accepted"


def authenticator(expected_user, expected_password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == expected_user.encode()
            and auth_data.password == expected_password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)
    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth")
    a = p.parse_args()

    ctx = None
    if a.mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
    kwargs = {}
    if a.auth:
        user, password = a.auth.split(":", 1)
        kwargs.update(
            authenticator=authenticator(user, password),
            auth_required=True,
            # aiosmtpd only counts STARTTLS as TLS; an implicit-TLS socket is TLS anyway
            auth_require_tls=(a.mode == "starttls"),
        )
    if a.mode == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    controller = Controller(
        Saver(a.out, a.mode == "tls"),
        hostname="127.0.0.1",
        port=a.port,
        ssl_context=ctx if a.mode == "tls" else None,
        server_hostname="127.0.0.1",
        **kwargs,
    )
    controller.start()
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
