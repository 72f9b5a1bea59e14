//! A health probe for images without a shell: `health_probe http://HOST:PORT/PATH` sends one
//! `GET` and exits 0 when the answer is 2xx, 1 when it is anything else or does not come
//! within a few seconds, and 2 when the URL is not one it understands.
//!
//! The container images in `deploy/` run it as their `HEALTHCHECK`: with no shell in the
//! image, `curl ... || exit 1` is not an option, and a probe built on `std` alone adds a few
//! hundred kilobytes instead of the shop's whole HTTP stack.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// The longest each step (connect, write, read) may take: a check that hangs is a failed check.
const STEP_TIMEOUT: Duration = Duration::from_secs(3);

/// A status line is far shorter; a peer that sends more without a line break is not HTTP.
const MAX_STATUS_LINE: usize = 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url] = args.as_slice() else {
        eprintln!("usage: health_probe http://HOST:PORT/PATH");
        return ExitCode::from(2);
    };
    let Some((authority, path)) = split_url(url) else {
        eprintln!("health_probe: `{url}` is not an http://HOST:PORT/PATH URL");
        return ExitCode::from(2);
    };
    match probe(authority, path) {
        Ok(status) if (200..300).contains(&status) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("health_probe: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("health_probe: {url}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `http://HOST:PORT/PATH` as its authority and its path (`/` when absent).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let valid = !authority.is_empty()
        && !authority.contains('@')
        && path.bytes().all(|b| b.is_ascii_graphic());
    valid.then_some((authority, path))
}

/// Sends `GET path` to `authority` and returns the response's status code.
fn probe(authority: &str, path: &str) -> Result<u16, String> {
    let addr = resolve(authority)?;
    let mut stream = TcpStream::connect_timeout(&addr, STEP_TIMEOUT)
        .map_err(|err| format!("cannot connect to {addr}: {err}"))?;
    stream
        .set_read_timeout(Some(STEP_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(STEP_TIMEOUT)))
        .map_err(|err| err.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: health_probe\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|err| format!("cannot send the request: {err}"))?;
    status_of(&read_status_line(&mut stream)?)
}

fn resolve(authority: &str) -> Result<SocketAddr, String> {
    authority
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve `{authority}` (HOST:PORT): {err}"))?
        .next()
        .ok_or_else(|| format!("`{authority}` resolves to no address"))
}

fn read_status_line(stream: &mut impl Read) -> Result<String, String> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 256];
    while !line.windows(2).any(|w| w == b"\r\n") {
        if line.len() > MAX_STATUS_LINE {
            return Err("the response has no status line".to_owned());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err("the connection closed before a response".to_owned()),
            Ok(n) => line.extend_from_slice(&chunk[..n]),
            Err(err) => return Err(format!("no response: {err}")),
        }
    }
    let end = line.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
    Ok(String::from_utf8_lossy(&line[..end]).into_owned())
}

/// The code of a status line such as `HTTP/1.1 200 OK`.
fn status_of(line: &str) -> Result<u16, String> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(format!("`{line}` is not an HTTP status line"));
    }
    code.parse()
        .map_err(|_| format!("`{line}` is not an HTTP status line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/health"),
            Some(("127.0.0.1:8080", "/health"))
        );
        assert_eq!(split_url("http://[::1]:80"), Some(("[::1]:80", "/")));
        assert_eq!(split_url("https://127.0.0.1:8080/health"), None);
        assert_eq!(split_url("http:///health"), None);
        assert_eq!(split_url("http://a@127.0.0.1:80/"), None);
        assert_eq!(split_url("http://127.0.0.1:80/a b"), None);
    }

    #[test]
    fn status_lines_give_their_code() {
        assert_eq!(status_of("HTTP/1.1 200 OK"), Ok(200));
        assert_eq!(status_of("HTTP/1.0 503"), Ok(503));
        assert!(status_of("SSH-2.0-OpenSSH").is_err());
        assert!(status_of("HTTP/1.1 20x OK").is_err());
    }

    #[test]
    fn a_real_server_is_probed_and_a_closed_port_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 512];
            let n = conn.read(&mut request).unwrap();
            conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        assert_eq!(probe(&addr.to_string(), "/health"), Ok(503));
        assert!(server
            .join()
            .unwrap()
            .starts_with("GET /health HTTP/1.1\r\n"));
        assert!(probe(&addr.to_string(), "/health").is_err());
    }
}
