"""A real SMTP server for the mail tests (aiosmtpd), started by Tests/TestSupport/SMTPTestServer.swift.

Every answer to a message or a recipient is appended to --out as one JSON line, written and synced
before the client sees the answer:
  {"reply": "250 ...", "stage": "data", "mail_from": ..., "rcpt_tos": [...], "data": <the message as
   received, dot-stuffing undone>, "parsed": {...}, "tls": bool, "login": user or null}
where "parsed" is what Python's own email parser (an independent MIME decoder) reads in it: the
decoded headers, the text and HTML parts (line breaks as \n), and the defects it found. So a test can tell what was accepted (reply 250) from what was refused, and count attempts.

Refusals on request: --transient-first N / --permanent-first N answer the text of the first N
messages with 451 / 554; --transient-recipient / --permanent-recipient ADDR answer RCPT TO with
450 / 550 for that address (repeatable). --data-delay S waits S seconds before answering a
message's text (a slow relay). --starttls or --implicit-tls with --tls-cert/--tls-key,
--auth USER:PASSWORD to require authentication. --ready-file is created once the port listens.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    def __init__(self, args):
        self.out = args.out
        self.transient_left = args.transient_first
        self.permanent_left = args.permanent_first
        self.transient_recipients = {a.lower() for a in args.transient_recipient}
        self.permanent_recipients = {a.lower() for a in args.permanent_recipient}
        self.data_delay = args.data_delay

    def record(self, server, session, envelope, stage, reply, rcpt_tos, data=None, parsed=None):
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        line = {
            "reply": reply,
            "stage": stage,
            "mail_from": envelope.mail_from,
            "rcpt_tos": rcpt_tos,
            "data": data,
            "parsed": parsed,
            # session.ssl after STARTTLS; the transport's own TLS object with implicit TLS.
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "login": login,
        }
        with open(self.out, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
            out.flush()
            os.fsync(out.fileno())

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.permanent_recipients:
            reply = "550 5.1.1 <%s>: mailbox unavailable" % address
        elif address.lower() in self.transient_recipients:
            reply = "450 4.2.1 <%s>: mailbox busy, try again later" % address
        else:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        self.record(server, session, envelope, "rcpt", reply, [address])
        return reply

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.data_delay)
        if self.transient_left > 0:
            self.transient_left -= 1
            reply = "451 4.3.0 Temporary failure, try again later"
        elif self.permanent_left > 0:
            self.permanent_left -= 1
            reply = "554 5.6.0 Message refused"
        else:
            reply = "250 2.0.0 OK queued"
        data = envelope.content.decode("utf-8", errors="replace")
        self.record(server, session, envelope, "data", reply, list(envelope.rcpt_tos), data, parse(envelope.content))
        return reply


def parse(content):
    message = email.message_from_bytes(content, policy=email.policy.default)
    defects = [type(d).__name__ for part in message.walk() for d in part.defects]
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return {
        "subject": str(message["subject"]),
        "from": str(message["from"]),
        "to": str(message["to"]),
        "date": str(message["date"]),
        "message_id": str(message["message-id"]),
        "content_type": message.get_content_type(),
        "text": text.get_content().replace("\r\n", "\n") if text is not None else None,
        "html": html.get_content().replace("\r\n", "\n") if html is not None else None,
        "defects": defects,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--transient-first", type=int, default=0)
    parser.add_argument("--permanent-first", type=int, default=0)
    parser.add_argument("--transient-recipient", action="append", default=[])
    parser.add_argument("--permanent-recipient", action="append", default=[])
    parser.add_argument("--data-delay", type=float, default=0)
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--auth")
    args = parser.parse_args()

    context = None
    if args.starttls or args.implicit_tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        user, password = args.auth.split(":", 1)
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
        # handled=False: aiosmtpd then answers 235 or 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    recorder = Recorder(args)
    options = {"hostname": "smtp.test", "timeout": 30}
    if args.starttls:
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        # With implicit TLS the whole connection is encrypted, which aiosmtpd's require-TLS check does not see.
        options.update(authenticator=authenticate, auth_required=True, auth_require_tls=args.starttls)

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(recorder, **options), host="127.0.0.1", port=args.port, ssl=context if args.implicit_tls else None
        )
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        open(args.ready_file, "w").close()
        await stop.wait()
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
