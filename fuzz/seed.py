#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets from the repository's real fixtures: the Pact
Broker's recorded answers (tests/broker_fixtures, tests/fixtures/pact-broker), Rollouts captured
in every phase (tests/fixtures/rollouts), the analyze examples (examples/analysis). Run from the
repository root; the output in fuzz/corpus/ is checked in (libFuzzer adds what it finds)."""
import hashlib, json, os, random, struct, glob

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
rng = random.Random(16)


def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def bodies_of(node):
    """Every response body (as JSON bytes) in a recorded-interactions file."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "response" and isinstance(v, dict) and "body" in v:
                yield v.get("status", 200), json.dumps(v["body"]).encode()
            else:
                yield from bodies_of(v)
    elif isinstance(node, list):
        for v in node:
            yield from bodies_of(v)


broker_files = glob.glob(os.path.join(ROOT, "tests/broker_fixtures/*.json")) + glob.glob(
    os.path.join(ROOT, "tests/fixtures/pact-broker/*.json"))
for path in broker_files:
    with open(path) as f:
        doc = json.load(f)
    for status, body in bodies_of(doc):
        code = (int(status) - 100) % 500 if isinstance(status, int) else 100
        put("broker_answers", struct.pack("<H", code) + bytes([0]) + body)
        put("broker_answers", struct.pack("<H", code) + bytes([0x85]) + body[: len(body) // 2])

for path in glob.glob(os.path.join(ROOT, "tests/fixtures/rollouts/*.json")):
    with open(path, "rb") as f:
        doc = json.dumps(json.load(f), separators=(",", ":")).encode()
    if len(doc) > 65535:
        continue
    for _ in range(2):
        tail = bytes(rng.randrange(256) for _ in range(96))
        put("decide", struct.pack("<H", len(doc)) + doc + tail)

for path in glob.glob(os.path.join(ROOT, "examples/analysis/*.json")):
    with open(path, "rb") as f:
        put("analyze_input", f.read())

for body in [b'{"version":"1.0.0","configHash":"3f2a"}', b'{"version":1,"configHash":"a"}',
             b'{"app":{"build":{"version":"2.0.0"}},"configHash":"x"}', b'<html>oops</html>',
             b'{"version":"1.0.0\\u001b]0;owned\\u0007"}']:
    put("attestation", b"/version\n" + body)
    put("attestation", b"/app/build/version\n" + body)
    put("attestation", b"/a~1b/~0c\n" + body)

for d in [b"1m30s", b"500ms", b"10", b"1h", b"0", b"1.5s", b"99999999999999h", b"-1s", b" 2m "]:
    put("duration", d)

for body in [
        b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"le":"0.1"},"value":[1700000000.5,"12"]}]}}',
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1795363200,"10"],[1795363260,"20"],[-1e300,"1"]]}]}}',
        b'{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}',
        b'{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["partial response"]}',
        b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}',
        b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]},{"metric":{},"value":[1,"+Inf"]}]}}']:
    put("prometheus_response", body)

for t in [b"plain", b"\x1b[2J\x1b]0;t\x07", b"a\r\nb\tc", "v1\u202e2".encode(), b"\xff\xfe"]:
    put("text", t)
