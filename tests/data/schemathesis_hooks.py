"""schemathesis hooks for tests/schemathesis.rs (loaded by `hooks` in schemathesis.toml).

Each request gets its own Idempotency-Key, as a real client sends one: a key names one request,
and a retry of that request carries it again. schemathesis draws header values like any other
string, so it sends the same short key ("0", say) with many different bodies; the server
rightly answers a key used for another request with a 422 (a rule about what the server has
seen before, which no schema can state), and schemathesis would count that as valid data
refused. A key generated valid is therefore made unique (a UUID's digits over its first 32
characters, its length and quotes kept), so it still fits the schema and tests what it drew;
a key generated invalid on purpose (the negative cases) is sent as drawn.
"""

import uuid

import schemathesis

HEADER = "idempotency-key"


def unique(value: str) -> str:
    """`value` made unique, keeping its length (at least a UUID's 32 digits) and its quotes."""
    text = value.strip()
    quoted = len(text) >= 2 and text[0] == text[-1] == '"'
    inner = text[1:-1] if quoted else text
    fresh = uuid.uuid4().hex
    inner = fresh + inner[len(fresh) :]
    return f'"{inner}"' if quoted else inner


@schemathesis.hook
def before_call(context, case, **kwargs):
    if not case.headers:
        return
    names = [name for name in case.headers if name.lower() == HEADER]
    if not names:
        return
    meta = case.meta
    if meta is not None and meta.is_negative_at("header"):
        return
    headers = dict(case.headers)
    for name in names:
        headers[name] = unique(str(headers[name]))
    # Assigned anew, not changed in place, so that schemathesis checks the headers again.
    case.headers = headers
