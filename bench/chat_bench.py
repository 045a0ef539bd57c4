#!/usr/bin/env python3
"""Load generators and data makers for bench/chat.sh (standard library only, Python >= 3.8).

Subcommands:
  sessions   open widget sessions (POST /api/sessions/init) for tenants' slugs; one id a line
  ttfe       open-loop POST /chatkit at a fixed rate: time to the answer's head, to its first SSE
             `data:` event (`message.started`, sent once the exchange is accepted, before retrieval)
             and to its first `text.delta` (the first word, after retrieval); every stream must open
             with message.started and end with message.completed then data: [DONE]
  streams    opens N /chatkit streams and holds them; samples /proc/PID/status of the chat process
             at checkpoints of open streams (each stream has received an event and not finished)
  provider   a local OpenAI-compatible chat-completions server that streams one token every
             INTERVAL seconds (`data: {"choices":[{"delta":{"content":…}}]}` lines, `data: [DONE]`)
  text       writes a realistic multi-paragraph text file of a given size (ingestion)
  seed       writes documents/chunks TSV files for COPY (retrieval) and a file of questions

Why a hand-written asyncio client for time-to-first-event: wrk and hey time whole responses (or the
first byte of the head), not the first SSE event, and Hummingbird may send the head before the
first event. Reading the raw socket, the client stamps the head and the first complete `data:`
event separately (time.perf_counter, microsecond resolution). At the moderate fixed rates used here
(tens of streams per second, each a few hundred bytes every 40 ms) the event loop is mostly idle,
so its own scheduling delay is far below the 20 ms goal; every arrival's lateness against its
schedule is recorded and reported, so a client that falls behind shows.
"""
import argparse
import asyncio
import json
import os
import random
import sys
import time


# --- a minimal HTTP/1.1 client ------------------------------------------------------------------

class Stream:
    """One POST whose answer is read as it arrives."""

    def __init__(self):
        self.status = None
        self.t_head = None
        self.t_first = None
        self.t_first_delta = None
        self.events = []
        self.error = None


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def body_pieces(reader, headers):
    """Yields the body's bytes as they arrive (chunked, sized or until EOF)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            yield data
    elif "content-length" in headers:
        remaining = int(headers["content-length"])
        while remaining > 0:
            data = await reader.read(min(remaining, 65536))
            if not data:
                raise ConnectionError("body ended early")
            remaining -= len(data)
            yield data
    else:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            yield data


def request_bytes(method, host, port, path, headers, body=b""):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def simple_request(host, port, method, path, headers, body=b""):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request_bytes(method, host, port, path, headers, body))
        await writer.drain()
        status, response_headers = await read_head(reader)
        data = b"".join([piece async for piece in body_pieces(reader, response_headers)])
        return status, data
    finally:
        writer.close()


async def chat_stream(host, port, session, message, on_event=None, t0_box=None):
    """POST /chatkit; returns a Stream with its timings (seconds after the request was written)."""
    stream = Stream()
    body = json.dumps({"messages": [{"role": "user", "content": message}]}).encode()
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    except OSError as error:
        stream.error = f"connect: {error}"
        return stream
    try:
        request = request_bytes("POST", host, port, "/chatkit", {"Content-Type": "application/json", "X-Session-ID": session}, body)
        t0 = time.perf_counter()
        if t0_box is not None:
            t0_box.append(t0)
        writer.write(request)
        await writer.drain()
        stream.status, headers = await read_head(reader)
        stream.t_head = time.perf_counter() - t0
        pending = b""
        async for piece in body_pieces(reader, headers):
            pending += piece
            while b"\n\n" in pending:
                raw, pending = pending.split(b"\n\n", 1)
                data = [line[5:].strip() for line in raw.split(b"\n") if line.startswith(b"data:")]
                if not data:
                    continue
                if stream.t_first is None:
                    stream.t_first = time.perf_counter() - t0
                text = b"\n".join(data).decode()
                if stream.t_first_delta is None and '"text.delta"' in text:
                    stream.t_first_delta = time.perf_counter() - t0
                stream.events.append(text)
                if on_event is not None:
                    on_event(stream, text)
        if stream.status != 200:
            stream.error = f"status {stream.status}: {pending[:200]!r}"
    except (OSError, asyncio.IncompleteReadError, ValueError) as error:
        stream.error = f"{type(error).__name__}: {error}"
    finally:
        writer.close()
    return stream


def stream_problem(stream):
    """None when the stream went as it must: message.started first, then the deltas, a
    message.completed event with the message id the start announced, then data: [DONE]."""
    if stream.error:
        return stream.error
    if len(stream.events) < 3 or stream.events[-1] != "[DONE]":
        return f"no final [DONE] ({len(stream.events)} events)"
    try:
        first, last = json.loads(stream.events[0]), json.loads(stream.events[-2])
    except ValueError:
        return "unreadable first event or event before [DONE]"
    if first.get("type") != "message.started":
        return f"opened with {first.get('type')}, not message.started"
    if last.get("type") != "message.completed":
        return f"ended with {last.get('type')}: {last.get('code')} {last.get('detail')}"
    if last.get("message_id") != first.get("message_id"):
        return "message.completed names another message than message.started"
    return None


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def summary_ms(values):
    return {
        "n": len(values),
        "p50": round(percentile(values, 50) * 1000, 2),
        "p90": round(percentile(values, 90) * 1000, 2),
        "p99": round(percentile(values, 99) * 1000, 2),
        "max": round(max(values) * 1000, 2) if values else float("nan"),
    }


QUESTIONS = [
    "What are your opening hours on weekends?",
    "How long does delivery take to Valparaiso?",
    "Can I return a product after thirty days?",
    "Do you offer a warranty on repairs?",
    "Which payment methods do you accept?",
    "How do I reset the password of my account?",
    "Is there parking near the store?",
    "What does the premium subscription include?",
]


# --- sessions -----------------------------------------------------------------------------------

async def open_sessions(args):
    slugs = args.slugs.split(",")
    out = []
    semaphore = asyncio.Semaphore(16)

    async def one(i):
        async with semaphore:
            status, data = await simple_request(
                args.host, args.port, "POST", "/api/sessions/init",
                {"Content-Type": "application/json", "X-Tenant-Slug": slugs[i % len(slugs)]}, b"{}",
            )
            if status != 201:
                raise SystemExit(f"sessions/init answered {status}: {data[:300]!r}")
            out.append(json.loads(data)["session_id"])

    await asyncio.gather(*(one(i) for i in range(args.count)))
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")


# --- time to first event ------------------------------------------------------------------------

async def ttfe(args):
    sessions = [line.strip() for line in open(args.sessions) if line.strip()]
    total = int(args.rate * args.duration)
    if total > len(sessions) * args.per_session:
        raise SystemExit(f"{total} streams need {total // args.per_session + 1} sessions, have {len(sessions)}")
    results = []
    lateness = []
    start = time.perf_counter() + 0.2
    tasks = []

    async def one(i, scheduled):
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        box = []
        stream = await chat_stream(args.host, args.port, sessions[i % len(sessions)], QUESTIONS[i % len(QUESTIONS)], t0_box=box)
        if box:
            lateness.append(box[0] - scheduled)
        results.append(stream)

    for i in range(total):
        tasks.append(asyncio.ensure_future(one(i, start + i / args.rate)))
    await asyncio.gather(*tasks)
    problems = [p for p in (stream_problem(s) for s in results) if p]
    firsts = [s.t_first for s in results if s.t_first is not None and not stream_problem(s)]
    first_deltas = [s.t_first_delta for s in results if s.t_first_delta is not None and not stream_problem(s)]
    heads = [s.t_head for s in results if s.t_head is not None and not stream_problem(s)]
    # Was the head sent on its own, before the first event (a client could then tell "connected" from "answering")?
    early_head = sum(1 for s in results if s.t_head is not None and s.t_first is not None and s.t_first - s.t_head > 0.0005)
    report = {
        "target": args.label, "rate": args.rate, "duration": args.duration, "streams": len(results), "ok": len(results) - len(problems),
        "errors": len(problems), "first_errors": problems[:5], "head_ms": summary_ms(heads), "first_event_ms": summary_ms(firsts),
        "first_delta_ms": summary_ms(first_deltas),
        "head_before_first_event": early_head,
        "client_lateness_ms": summary_ms([max(0.0, x) for x in lateness]),
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report))
    if problems:
        sys.exit(1)


# --- open streams -------------------------------------------------------------------------------

def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "Threads"):
                fields[name] = int(value.split()[0])
    try:
        fields["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return fields


async def streams(args):
    sessions = [line.strip() for line in open(args.sessions) if line.strip()]
    if len(sessions) < args.count:
        raise SystemExit(f"need {args.count} sessions, have {len(sessions)}")
    checkpoints = sorted(int(c) for c in args.checkpoints.split(","))
    state = {"with_event": 0, "finished": 0}
    samples = [{"open": 0, **proc_status(args.pid)}]
    results = []

    def on_event(stream, text):
        if not getattr(stream, "counted", False):
            stream.counted = True
            state["with_event"] += 1

    async def one(i):
        stream = await chat_stream(args.host, args.port, sessions[i], QUESTIONS[i % len(QUESTIONS)], on_event=on_event)
        state["finished"] += 1
        results.append(stream)

    tasks = []
    started = time.perf_counter()
    for i in range(args.count):
        tasks.append(asyncio.ensure_future(one(i)))
        await asyncio.sleep(1 / args.ramp)
    # Sample at each checkpoint while that many streams are open at once (have had an event, not ended).
    pending_checkpoints = list(checkpoints)
    deadline = time.perf_counter() + args.timeout
    while pending_checkpoints and time.perf_counter() < deadline:
        open_now = state["with_event"] - state["finished"]
        if open_now >= pending_checkpoints[0]:
            samples.append({"open": open_now, "seconds": round(time.perf_counter() - started, 1), **proc_status(args.pid)})
            pending_checkpoints.pop(0)
            continue
        if state["finished"] >= args.count:
            break
        await asyncio.sleep(0.05)
    ramp_seconds = time.perf_counter() - started
    done, not_done = await asyncio.wait(tasks, timeout=max(1, deadline - time.perf_counter()))
    for task in not_done:
        task.cancel()
    samples.append({"open": state["with_event"] - state["finished"], "after": True, **proc_status(args.pid)})
    problems = [p for p in (stream_problem(s) for s in results) if p] + ["unfinished at the timeout"] * len(not_done)
    got_event = sum(1 for s in results if s.t_first is not None) + sum(1 for _ in not_done)
    deltas = [sum(1 for e in s.events if '"text.delta"' in e) for s in results]
    report = {
        "streams": args.count, "ramp_per_second": args.ramp, "ramp_seconds": round(ramp_seconds, 1),
        "got_an_event": got_event, "completed_ok": args.count - len(problems), "errors": len(problems),
        "first_errors": sorted(set(problems))[:5], "deltas_per_stream_min": min(deltas) if deltas else 0,
        "first_event_ms": summary_ms([s.t_first for s in results if s.t_first is not None]),
        "missed_checkpoints": pending_checkpoints, "samples_kib": samples,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report))


# --- a slow OpenAI-compatible provider ----------------------------------------------------------

async def provider(args):
    active = {"n": 0}

    async def handle(reader, writer):
        try:
            _, headers = await read_head_request(reader)
            await reader.readexactly(int(headers.get("content-length", "0")))
            active["n"] += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            for i in range(args.tokens):
                if i:
                    await asyncio.sleep(args.interval)
                event = b'data: {"choices":[{"delta":{"content":"word%d "}}]}\n\n' % i
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
            done = b"data: [DONE]\n\n"
            writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            active["n"] -= 1
            writer.close()

    server = await asyncio.start_server(handle, args.host, args.port, backlog=4096)
    async with server:
        await server.serve_forever()


async def read_head_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


# --- data ----------------------------------------------------------------------------------------

WORDS = {
    "english": (
        "the of and to in is for on with that our you your we are be can this from at by it or as order orders delivery "
        "store hours opening weekend weekday return returns refund warranty repair payment card account password reset "
        "subscription premium plan price prices shipping product products customer support team email phone parking "
        "available days business receipt invoice discount coupon gift size color stock store online pickup branch "
        "service services install installation guide manual battery screen charger cable laptop phone tablet camera"
    ).split(),
    "spanish": (
        "el la de que y en los las por para con un una su sus es son del al tienda horario apertura fin semana envio "
        "envios devolucion devoluciones reembolso garantia reparacion pago tarjeta cuenta contrasena suscripcion plan "
        "precio precios producto productos cliente soporte correo telefono estacionamiento disponible dias boleta factura "
        "descuento cupon regalo talla color inventario retiro sucursal servicio instalacion manual bateria pantalla"
    ).split(),
    "german": (
        "der die das und zu in ist fur mit dass unser sie ihr wir sind von bei oder als bestellung lieferung geschaft "
        "offnungszeiten wochenende ruckgabe erstattung garantie reparatur zahlung karte konto passwort abonnement preis "
        "versand produkt kunde kundendienst telefon parkplatz verfugbar tage rechnung rabatt gutschein geschenk grosse "
        "farbe lager abholung filiale dienst installation anleitung akku bildschirm ladegerat kabel"
    ).split(),
    "french": (
        "le la les de des et en est pour avec que notre vous votre nous sont du au par ou commande livraison magasin "
        "horaires ouverture weekend retour remboursement garantie reparation paiement carte compte mot passe abonnement "
        "prix expedition produit client assistance courriel telephone parking disponible jours facture remise coupon "
        "cadeau taille couleur stock retrait agence service installation notice batterie ecran chargeur cable"
    ).split(),
    "simple": (
        "sku model serie ref code api token webhook sdk plugin widget dashboard login sso oauth csv export import "
        "backup sync cloud server region latency uptime status incident ticket priority escalation release version"
    ).split(),
}
CONFIGS = ["english", "spanish", "german", "french", "simple"]
SYLLABLES = "ka lo mi nu ter san vel dor pri qua zen fa ri to ble mon gar sil tro pen".split()


def rare_word(rng):
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def sentence(rng, words, rare):
    n = rng.randint(6, 18)
    # A Zipf-like pick: common words often, the long tail (names, codes) now and then.
    picked = [words[min(len(words) - 1, int(len(words) * rng.random() ** 2.2))] if rng.random() > 0.12 else rng.choice(rare) for _ in range(n)]
    if rng.random() < 0.15:
        picked.append(str(rng.randint(1, 9999)))
    text = " ".join(picked)
    return text[0].upper() + text[1:] + rng.choice([".", ".", ".", "?", "!"])


def paragraph(rng, words, rare):
    return " ".join(sentence(rng, words, rare) for _ in range(rng.randint(2, 7)))


def write_text(args):
    rng = random.Random(args.seed)
    words = WORDS["english"] + WORDS["simple"]
    rare = [rare_word(rng) for _ in range(5000)]
    written = 0
    section = 0
    with open(args.out, "w") as f:
        while written < args.bytes:
            if rng.random() < 0.1:
                section += 1
                block = f"## Section {section}: {rng.choice(rare).title()} {rng.choice(words)}\n\n"
            else:
                block = paragraph(rng, words, rare) + "\n\n"
            block = block[: args.bytes - written] if written + len(block) > args.bytes else block
            f.write(block)
            written += len(block.encode())


def seed(args):
    """documents.tsv and chunks.tsv (COPY text format) for TENANTS tenants, CHUNKS chunks in all,
    each tenant in one language's configuration; questions.tsv: tenant<TAB>question."""
    rng = random.Random(args.seed)
    tenants = [f"{rng.getrandbits(128):032x}" for _ in range(args.tenants)]
    tenants = [f"{t[:8]}-{t[8:12]}-4{t[13:16]}-8{t[17:20]}-{t[20:32]}" for t in tenants]
    per_tenant = args.chunks // args.tenants
    docs_per_tenant = max(1, per_tenant // 50)
    rare = [rare_word(rng) for _ in range(20000)]
    with open(os.path.join(args.dir, "documents.tsv"), "w") as docs, open(os.path.join(args.dir, "chunks.tsv"), "w") as chunks, \
            open(os.path.join(args.dir, "questions.tsv"), "w") as questions:
        for t_index, tenant in enumerate(tenants):
            config = CONFIGS[t_index % len(CONFIGS)]
            words = WORDS[config] + (WORDS["simple"] if config != "simple" else WORDS["english"])
            tenant_rare = rng.sample(rare, 400)
            doc_ids = []
            for d in range(docs_per_tenant):
                doc_id = f"{tenant[:24]}{d:012x}"
                doc_ids.append(doc_id)
                docs.write(f"{doc_id}\t{tenant}\tdoc-{d}.md\ttext/markdown\t0\tx\tkb-{doc_id}\tcompleted\t0\n")
            for c in range(per_tenant):
                doc = doc_ids[c % docs_per_tenant]
                text = paragraph(rng, words, tenant_rare)
                while len(text) < 700:
                    text += "\n\n" + paragraph(rng, words, tenant_rare)
                text = text[:1000].replace("\\", " ").replace("\t", " ").replace("\n", "\\n")
                chunk_id = f"{rng.getrandbits(128):032x}"
                chunk_id = f"{chunk_id[:8]}-{chunk_id[8:12]}-4{chunk_id[13:16]}-8{chunk_id[17:20]}-{chunk_id[20:32]}"
                chunks.write(f"{chunk_id}\t{tenant}\t{doc}\t{c // docs_per_tenant}\t{text}\t{config}\n")
            for _ in range(args.questions_per_tenant):
                q = " ".join(rng.choice(words) if rng.random() > 0.3 else rng.choice(tenant_rare) for _ in range(rng.randint(3, 9)))
                questions.write(f"{tenant}\t{q}?\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("sessions", "ttfe", "streams"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--out", required=True)
        if name == "sessions":
            p.add_argument("--slugs", required=True)
            p.add_argument("--count", type=int, required=True)
        else:
            p.add_argument("--sessions", required=True)
        if name == "ttfe":
            p.add_argument("--label", required=True)
            p.add_argument("--rate", type=float, required=True)
            p.add_argument("--duration", type=float, required=True)
            p.add_argument("--per-session", type=int, default=5)
        if name == "streams":
            p.add_argument("--count", type=int, required=True)
            p.add_argument("--ramp", type=float, default=250)
            p.add_argument("--pid", type=int, required=True)
            p.add_argument("--checkpoints", default="1000,5000")
            p.add_argument("--timeout", type=float, default=180)
    p = sub.add_parser("provider")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--tokens", type=int, default=60)
    p = sub.add_parser("text")
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=10)
    p = sub.add_parser("seed")
    p.add_argument("--dir", required=True)
    p.add_argument("--tenants", type=int, default=100)
    p.add_argument("--chunks", type=int, default=100000)
    p.add_argument("--questions-per-tenant", type=int, default=10)
    p.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    if args.command == "text":
        write_text(args)
    elif args.command == "seed":
        seed(args)
    else:
        asyncio.run({"sessions": open_sessions, "ttfe": ttfe, "streams": streams, "provider": provider}[args.command](args))


if __name__ == "__main__":
    main()
