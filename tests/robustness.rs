//! The shop against a hostile client, over raw TCP sockets: several hundred malformed requests
//! (framing, headers, methods, targets, encodings, bodies, JSON) each get a 4xx or a clean
//! close, never a 2xx, a 5xx or a connection held open; slow and silent bodies are cut with
//! 408; every method on every internal route is 403 at the gateway; and the shop process is
//! alive and healthy afterwards.
//!
//! The shop runs as a child process (the binary of `cargo run --example shop`) so that a crash
//! shows as a dead process, not as a panic some task swallowed.

use microkit_test_support as support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use microkit::http::{Method, StatusCode};
use support::shop::{temp_data_dir, wait_healthy, ShopProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// How long one malformed request may take to be answered or closed. Above the default
/// 5 s grace of the minimum body rate: a body that never comes is cut by then.
const HELD: Duration = Duration::from_secs(8);

/// How many cases run at once: enough to finish fast, few enough for a 2-core machine.
const CONCURRENCY: usize = 48;

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The server answered with this status.
    Answered(u16),
    /// The server closed (or reset) the connection without a byte of answer.
    Closed,
    /// Bytes that are not an HTTP/1.1 response head.
    Garbled(String),
    /// Nothing within [`HELD`]: the connection was held open.
    Held,
}

/// One malformed request.
struct Case {
    what: String,
    bytes: Vec<u8>,
    /// Close the writing side after the bytes, as a client that gives up does.
    close_write: bool,
    /// The bytes open HTTP/2: the answer is HTTP/2 frames, which must hold a GOAWAY.
    http2: bool,
}

impl Case {
    fn new(what: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            what: what.into(),
            bytes: bytes.into(),
            close_write: false,
            http2: false,
        }
    }

    fn then_close(mut self) -> Self {
        self.close_write = true;
        self
    }

    fn speaking_http2(mut self) -> Self {
        self.http2 = true;
        self
    }
}

/// Sends `case` on a fresh connection and reads up to the end of the answer's head.
async fn exchange(addr: SocketAddr, case: &Case) -> Outcome {
    let stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(err) => return Outcome::Garbled(format!("connecting failed: {err}")),
    };
    let (mut reader, mut writer) = stream.into_split();
    let (bytes, close_write) = (case.bytes.clone(), case.close_write);
    // Written in the background: the server may answer (and close) before reading it all.
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&bytes).await;
        if close_write {
            let _ = writer.shutdown().await;
        }
        // Keep the writing side open until the answer was read.
        std::future::pending::<()>().await;
        drop(writer);
    });
    let reading = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        if case.http2 {
            // The server refuses the garbage with a GOAWAY (HTTP/2's way to refuse a
            // connection), then closes.
            let _ = reader.read_to_end(&mut buf).await;
            return if has_goaway(&buf) {
                Outcome::Closed
            } else {
                Outcome::Garbled(format!("HTTP/2 frames without a GOAWAY: {buf:?}"))
            };
        }
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let status = head
                    .strip_prefix("HTTP/1.1 ")
                    .and_then(|rest| rest.get(..3))
                    .and_then(|code| code.parse().ok());
                return status.map_or(Outcome::Garbled(head), Outcome::Answered);
            }
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) if buf.is_empty() => return Outcome::Closed,
                Ok(0) | Err(_) => {
                    return Outcome::Garbled(String::from_utf8_lossy(&buf).into_owned())
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let outcome = tokio::time::timeout(HELD, reading)
        .await
        .unwrap_or(Outcome::Held);
    writing.abort();
    outcome
}

/// Whether `bytes`, HTTP/2 frames, hold a GOAWAY frame.
fn has_goaway(mut bytes: &[u8]) -> bool {
    const GOAWAY: u8 = 0x7;
    while bytes.len() >= 9 {
        let length =
            usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        if bytes[3] == GOAWAY {
            return true;
        }
        bytes = bytes.get(9 + length..).unwrap_or_default();
    }
    false
}

/// Runs every case against `addr`, `CONCURRENCY` at a time; returns each with its outcome.
async fn run_all(addr: SocketAddr, cases: Vec<Case>) -> Vec<(Case, Outcome)> {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut running = Vec::new();
    for case in cases {
        let permit = permits.clone().acquire_owned().await.unwrap();
        running.push(tokio::spawn(async move {
            let outcome = exchange(addr, &case).await;
            drop(permit);
            (case, outcome)
        }));
    }
    let mut results = Vec::new();
    for handle in running {
        results.push(handle.await.expect("a case task"));
    }
    results
}

/// A request with `head` lines (each without its CRLF) and `body`.
fn request(line: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{line}\r\nHost: shop.test\r\n").into_bytes();
    for header in headers {
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    bytes
}

/// A JSON `POST`/`PUT`/`PATCH` with `body` and a matching `Content-Length`.
fn json(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let length = format!("Content-Length: {}", body.len());
    request(
        &format!("{method} {path} HTTP/1.1"),
        &["Content-Type: application/json", &length],
        body,
    )
}

/// Broken framing: request lines, versions, line endings, bytes that are not HTTP at all.
fn framing() -> Vec<Case> {
    let mut cases = vec![
        Case::new(
            "a TLS ClientHello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
        ),
        Case::new("binary garbage", [0u8, 1, 2, 3, 255, 254, 13, 10, 13, 10]),
        Case::new(
            "an HTTP/2 preface then garbage",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nnonsense-frames".to_vec(),
        )
        .speaking_http2(),
        Case::new("no version", b"GET /product/1\r\n\r\n".to_vec()),
        Case::new(
            "HTTP/9.9",
            b"GET /product/1 HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
        ),
        Case::new(
            "HTTP/1.2",
            b"GET /product/1 HTTP/1.2\r\nHost: x\r\n\r\n".to_vec(),
        ),
        Case::new(
            "a lowercase version",
            b"GET /product/1 http/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        Case::new(
            "a trailing word",
            b"GET /product/1 HTTP/1.1 please\r\nHost: x\r\n\r\n".to_vec(),
        ),
        Case::new(
            "two spaces",
            b"GET  /product/1 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        Case::new(
            "a tab separator",
            b"GET\t/product/1\tHTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        Case::new(
            "a NUL in the line",
            b"GET /prod\0uct/1 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        Case::new(
            "a space in the target",
            b"GET /product/ 1 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        Case::new(
            "a bare CR line end",
            b"GET /product/1 HTTP/1.1\rHost: x\r\r".to_vec(),
        )
        .then_close(),
        Case::new(
            "an empty method",
            b" /product/1 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        Case::new(
            "a header before the request line",
            b"Host: x\r\nGET / HTTP/1.1\r\n\r\n".to_vec(),
        ),
        Case::new("only a version", b"HTTP/1.1\r\n\r\n".to_vec()),
        Case::new(
            "a response instead of a request",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        Case::new(
            "a request line of 100 KB",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000)),
        ),
        Case::new("a half-sent request line", b"GET /product/1 HT".to_vec()).then_close(),
        Case::new(
            "headers that never end",
            b"GET /product/1 HTTP/1.1\r\nHost: x\r\n".to_vec(),
        )
        .then_close(),
    ];
    for bad in ["GE(T", "G\"T", "GET/", "G{}T", "GET:", "\u{7f}GET", "GÉT"] {
        cases.push(Case::new(
            format!("an invalid method token {bad:?}"),
            format!("{bad} /product/1 HTTP/1.1\r\nHost: x\r\n\r\n"),
        ));
    }
    cases
}

/// Broken header fields and conflicting framing headers.
fn headers() -> Vec<Case> {
    let many: Vec<String> = (0..300).map(|n| format!("X-Many-{n}: {n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let huge = format!("X-Huge: {}", "a".repeat(100_000));
    let line = "POST /product/ HTTP/1.1";
    let body = br#"{"name":"Lamp","price_cents":1999}"#;
    vec![
        Case::new(
            "300 header fields",
            request("GET /product/1 HTTP/1.1", &many, b""),
        ),
        Case::new(
            "a 100 KB header field",
            request("GET /product/1 HTTP/1.1", &[&huge], b""),
        ),
        Case::new(
            "a field without a colon",
            request("GET /product/1 HTTP/1.1", &["NoColon"], b""),
        ),
        Case::new(
            "a space before the colon",
            request("GET /product/1 HTTP/1.1", &["X-Bad : 1"], b""),
        ),
        Case::new(
            "a space in a field name",
            request("GET /product/1 HTTP/1.1", &["X Bad: 1"], b""),
        ),
        Case::new(
            "an empty field name",
            request("GET /product/1 HTTP/1.1", &[": 1"], b""),
        ),
        Case::new(
            "a NUL in a value",
            request("GET /product/1 HTTP/1.1", &["X-Bad: a\0b"], b""),
        ),
        Case::new(
            "a folded line",
            request("GET /product/1 HTTP/1.1", &["X-Bad: a", " folded"], b""),
        ),
        Case::new(
            "a non-token field name",
            request("GET /product/1 HTTP/1.1", &["X(Bad): 1"], b""),
        ),
        Case::new(
            "two different lengths",
            request(
                line,
                &[
                    "Content-Type: application/json",
                    "Content-Length: 34",
                    "Content-Length: 35",
                ],
                body,
            ),
        ),
        Case::new(
            "a negative length",
            request(
                line,
                &["Content-Type: application/json", "Content-Length: -34"],
                body,
            ),
        ),
        Case::new(
            "a length that is not a number",
            request(
                line,
                &["Content-Type: application/json", "Content-Length: 3a"],
                body,
            ),
        ),
        Case::new(
            "a length past u64",
            request(
                line,
                &[
                    "Content-Type: application/json",
                    "Content-Length: 99999999999999999999999",
                ],
                body,
            ),
        ),
        Case::new(
            "a length with a plus sign",
            request(
                line,
                &["Content-Type: application/json", "Content-Length: +34"],
                body,
            ),
        ),
        Case::new(
            "a length list",
            request(
                line,
                &["Content-Type: application/json", "Content-Length: 34, 35"],
                body,
            ),
        ),
        Case::new(
            "a length far past the limit",
            request(
                line,
                &[
                    "Content-Type: application/json",
                    "Content-Length: 1000000000",
                ],
                body,
            ),
        ),
        Case::new(
            "chunked not last",
            request(
                line,
                &[
                    "Content-Type: application/json",
                    "Transfer-Encoding: chunked, identity",
                ],
                body,
            ),
        ),
        Case::new(
            "an unknown transfer coding",
            request(
                line,
                &["Content-Type: application/json", "Transfer-Encoding: gzip"],
                body,
            ),
        ),
        Case::new(
            "a transfer coding in HTTP/1.0",
            request(
                "POST /product/ HTTP/1.0",
                &[
                    "Content-Type: application/json",
                    "Transfer-Encoding: chunked",
                ],
                b"22\r\n{\"name\":\"Lamp\",\"price_cents\":1999}\r\n0\r\n\r\n",
            ),
        ),
        Case::new(
            "an unknown expectation",
            request(
                line,
                &[
                    "Content-Type: application/json",
                    "Expect: 200-ok",
                    "Content-Length: 34",
                ],
                body,
            ),
        ),
    ]
}

/// The shop's routes, as the gateway exposes them, with a path of each.
const PATHS: [&str; 12] = [
    "/user/",
    "/user/1",
    "/user/1/cart/",
    "/user/1/cart/1",
    "/send_email/",
    "/product/",
    "/product/1",
    "/products/",
    "/invoices",
    "/invoices/1",
    "/invoices/1/pay",
    "/log",
];

/// Methods no route answers, on every route, and odd targets.
fn methods_and_targets() -> Vec<Case> {
    let mut cases = Vec::new();
    for path in PATHS {
        for method in ["XMK01", "PROPFIND", "BREW", "get", "CONNECT"] {
            cases.push(Case::new(
                format!("{method} {path}"),
                request(&format!("{method} {path} HTTP/1.1"), &[], b""),
            ));
        }
    }
    let targets = [
        "/product/%zz",
        "/product/%",
        "/product/%00",
        "/product/abc",
        "/product/-1",
        "/product/1.5",
        "/product/99999999999999999999999999",
        "/product/1/extra",
        "/user/%2e%2e/%2e%2e/etc/passwd",
        "/../../etc/passwd",
        "//evil.example/",
        "/%2F%2Fevil.example/",
        "/%5Cevil.example/",
        "/nowhere",
        "*",
        "/products/?limit=abc",
        "/products/?limit=-1",
        "/products/?offset=x",
        "/products/?limit=99999999999999999999",
        "/products/?%zz=1",
        "/user/abc",
        "/user/1/cart/abc",
        "/invoices/abc",
    ];
    for target in targets {
        cases.push(Case::new(
            format!("GET {target}"),
            request(&format!("GET {target} HTTP/1.1"), &[], b""),
        ));
    }
    cases
}

/// Bodies the shop's writes must refuse: not JSON, not UTF-8, the wrong shape, the wrong
/// media type or encoding, past the limit, cut short.
fn bodies() -> Vec<Case> {
    let writes = [
        ("POST", "/user/"),
        ("PUT", "/user/1"),
        ("PATCH", "/user/1"),
        ("POST", "/user/1/cart/"),
        ("POST", "/send_email/"),
        ("POST", "/product/"),
        ("PUT", "/product/1"),
        ("PATCH", "/product/1"),
        ("POST", "/invoices"),
        ("POST", "/log"),
    ];
    let deep = "[".repeat(10_000);
    let malformed: [(&str, &[u8]); 16] = [
        ("an empty body", b""),
        ("an open brace", b"{"),
        ("a missing value", br#"{"name":}"#),
        ("a trailing comma", br#"{"name":"a",}"#),
        ("single quotes", b"{'name':'a'}"),
        ("trailing garbage", br#"{"name":"a"} x"#),
        ("invalid UTF-8 in a string", b"{\"name\":\"\xff\xfe\"}"),
        ("invalid UTF-8 outside strings", b"\xff{\"name\":\"a\"}"),
        ("a lone surrogate escape", br#"{"name":"\ud800"}"#),
        ("a bad escape", br#"{"name":"\q"}"#),
        ("NaN", br#"{"price_cents":NaN}"#),
        ("a UTF-16 body", b"\xff\xfe{\x00}\x00"),
        ("deep nesting", deep.as_bytes()),
        ("a bare string", br#""hello""#),
        ("null", b"null"),
        ("an array", b"[1,2,3]"),
    ];
    let mut cases = Vec::new();
    for (method, path) in writes {
        for (what, body) in malformed {
            cases.push(Case::new(
                format!("{method} {path} with {what}"),
                json(method, path, body),
            ));
        }
        let valid = br#"{"name":"Lamp","price_cents":1999}"#;
        let length = format!("Content-Length: {}", valid.len());
        let line = format!("{method} {path} HTTP/1.1");
        cases.push(Case::new(
            format!("{method} {path} as text/plain"),
            request(&line, &["Content-Type: text/plain", &length], valid),
        ));
        cases.push(Case::new(
            format!("{method} {path} with no media type"),
            request(&line, &[&length], valid),
        ));
        cases.push(Case::new(
            format!("{method} {path} gzip-encoded (it is not)"),
            request(
                &line,
                &[
                    "Content-Type: application/json",
                    "Content-Encoding: gzip",
                    &length,
                ],
                valid,
            ),
        ));
        cases.push(Case::new(
            format!("{method} {path} past the 1 MiB limit"),
            json(
                method,
                path,
                format!("[{}1]", "1,".repeat(600_000)).as_bytes(),
            ),
        ));
        cases.push(
            Case::new(
                format!("{method} {path} cut short"),
                request(
                    &line,
                    &["Content-Type: application/json", "Content-Length: 100"],
                    br#"{"name":"#,
                ),
            )
            .then_close(),
        );
        cases.push(
            Case::new(
                format!("{method} {path} with a bad chunk size"),
                request(
                    &line,
                    &[
                        "Content-Type: application/json",
                        "Transfer-Encoding: chunked",
                    ],
                    b"zz\r\n{}\r\n0\r\n\r\n",
                ),
            )
            .then_close(),
        );
        cases.push(
            Case::new(
                format!("{method} {path} with an overflowing chunk size"),
                request(
                    &line,
                    &[
                        "Content-Type: application/json",
                        "Transfer-Encoding: chunked",
                    ],
                    b"fffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
                ),
            )
            .then_close(),
        );
    }
    cases
}

/// Starts the shop as a child process and waits until every service is healthy.
async fn start_shop(data: &tempfile::TempDir) -> ShopProcess {
    let dir = data.path().display().to_string();
    let shop = ShopProcess::start(&["--listen", "127.0.0.1:0", "--data-dir", &dir], 7).await;
    wait_healthy(shop.api("gateway"), support::PATIENCE).await;
    shop
}

/// Every listener of the shop still answers `/health` with 200.
async fn assert_alive(shop: &ShopProcess) {
    for (name, addr) in &shop.listeners {
        let reply = support::get(*addr, "/health").await;
        assert_eq!(reply.status, StatusCode::OK, "{name} after the barrage");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_malformed_requests_get_a_4xx_or_a_clean_close() {
    let data = temp_data_dir();
    let shop = start_shop(&data).await;
    let started = Instant::now();
    let gateway = shop.addr("gateway");
    let mut results = Vec::new();
    let all: Vec<Case> = [framing(), headers(), methods_and_targets(), bodies()]
        .into_iter()
        .flatten()
        .collect();
    let count = all.len();
    results.extend(run_all(gateway, all).await);
    // Straight at a service too: the framing and header cases, which no route filters.
    let catalog = shop.addr("catalog");
    let direct: Vec<Case> = [framing(), headers()].into_iter().flatten().collect();
    let direct_count = direct.len();
    results.extend(run_all(catalog, direct).await);
    let failures: Vec<String> = results
        .iter()
        .filter(|(_, outcome)| {
            !matches!(outcome, Outcome::Closed)
                && !matches!(outcome, Outcome::Answered(status) if (400..500).contains(status))
        })
        .map(|(case, outcome)| format!("{}: {outcome:?}", case.what))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases were not a 4xx or a clean close:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
    assert!(
        count + direct_count >= 300,
        "only {} cases",
        count + direct_count
    );
    assert_alive(&shop).await;
    eprintln!(
        "{} malformed requests in {:?}",
        results.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_bodies_are_cut_with_408() {
    let data = temp_data_dir();
    let shop = start_shop(&data).await;
    for addr in [shop.addr("gateway"), shop.addr("catalog")] {
        let started = Instant::now();
        let silent = tokio::spawn(async move {
            let case = Case::new(
                "a silent body",
                request(
                    "POST /product/ HTTP/1.1",
                    &["Content-Type: application/json", "Content-Length: 100"],
                    b"",
                ),
            );
            exchange(addr, &case).await
        });
        // One byte a second: never a 10 s gap, but far under 240 B/s.
        let trickle = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(
                    b"POST /product/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                      Content-Length: 100\r\n\r\n",
                )
                .await
                .unwrap();
            let (mut reader, mut writer) = stream.into_split();
            let reading = tokio::spawn(async move {
                let mut answer = Vec::new();
                let _ = tokio::time::timeout(HELD, reader.read_to_end(&mut answer)).await;
                answer
            });
            while !reading.is_finished() {
                let _ = writer.write_all(b" ").await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            String::from_utf8_lossy(&reading.await.unwrap()).into_owned()
        });
        assert_eq!(silent.await.unwrap(), Outcome::Answered(408), "{addr}");
        let trickled = trickle.await.unwrap();
        assert!(trickled.starts_with("HTTP/1.1 408"), "{addr}: {trickled}");
        assert!(trickled.contains("application/problem+json"), "{trickled}");
        assert!(started.elapsed() < HELD, "{:?}", started.elapsed());
    }
    assert_alive(&shop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_on_every_internal_route_is_403_at_the_gateway() {
    let data = temp_data_dir();
    let shop = start_shop(&data).await;
    let methods = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "XMK01",
    ];
    let mut cases = Vec::new();
    for path in ["/emails/", "/emails/?to=ada@example.com"] {
        for method in methods {
            cases.push(Case::new(
                format!("{method} {path}"),
                request(
                    &format!("{method} {path} HTTP/1.1"),
                    &["Content-Length: 0"],
                    b"",
                ),
            ));
        }
    }
    for method in ["GET", "HEAD"] {
        cases.push(Case::new(
            format!("{method} /log"),
            request(
                &format!("{method} /log?from=0&to=2000000000 HTTP/1.1"),
                &[],
                b"",
            ),
        ));
    }
    // A forged mark or a `Connection` naming it changes nothing.
    cases.push(Case::new(
        "GET /log with a forged mark",
        request(
            "GET /log HTTP/1.1",
            &["Connection: x-microkit-gateway", "X-Microkit-Gateway: "],
            b"",
        ),
    ));
    for (case, outcome) in run_all(shop.addr("gateway"), cases).await {
        assert_eq!(outcome, Outcome::Answered(403), "{}", case.what);
    }
    // OPTIONS on /log is answered at the edge without naming GET.
    let reply = support::send(
        shop.addr("gateway"),
        support::request(Method::OPTIONS, "/log", Bytes::new()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let allow = reply.header("allow");
    assert!(
        !allow.contains("GET") && allow.contains("POST"),
        "Allow: {allow}"
    );
    // Straight from loopback the stats service still answers, as the contract says.
    let direct = support::get(shop.addr("stats"), "/log?from=0&to=2000000000").await;
    assert_eq!(direct.status, StatusCode::OK);
    assert_alive(&shop).await;
}
