//! A small HTTP/1.1 server on `std::net`, written for the sandbox so that faults can be
//! exact on the wire: a hang really hangs, a reset really resets, a truncated body really is
//! truncated. Keep-alive, `Content-Length` and chunked request bodies.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Largest header block accepted.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest body accepted (a 1000-event request is about 1.5 MB).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, `GET`, …
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers (Content-Length is added when written).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json; charset=UTF-8".into(),
            )],
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    fn head(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        head.into_bytes()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// What to do on the wire.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer.
    Respond(Response),
    /// Wait, then answer.
    Delay(Duration, Response),
    /// Never answer; keep the connection open until the client gives up.
    Hang,
    /// Close with a TCP reset (RST) before answering.
    Reset,
    /// Close (FIN) before sending any header.
    CloseBeforeHeaders,
    /// Send the headers with the full Content-Length, half the body, then close.
    Truncate(Response),
}

/// Serves one connection until the client closes it, asks to, or the server stops.
pub fn serve_connection(
    stream: TcpStream,
    stopping: &AtomicBool,
    mut handle: impl FnMut(Request) -> Action,
) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut out = stream;
    loop {
        if stopping.load(Ordering::Relaxed) {
            return;
        }
        let req = match read_request(&mut reader) {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                let status = if e.kind() == io::ErrorKind::InvalidData {
                    400
                } else {
                    413
                };
                let body = serde_json::json!({"error": {"message": e.to_string(), "code": 100}});
                let mut r = Response::json(status, &body);
                r.headers.push(("Connection".into(), "close".into()));
                let _ = out.write_all(&r.head());
                let _ = out.write_all(&r.body);
                return;
            }
        };
        let close = req.wants_close();
        match handle(req) {
            Action::Respond(r) => {
                if write_response(&mut out, &r).is_err() || close {
                    return;
                }
            }
            Action::Delay(d, r) => {
                std::thread::sleep(d);
                if write_response(&mut out, &r).is_err() || close {
                    return;
                }
            }
            Action::Hang => {
                hang(&mut reader, stopping);
                return;
            }
            Action::Reset => {
                let sock = socket2::SockRef::from(&out);
                let _ = sock.set_linger(Some(Duration::ZERO));
                return; // dropping the stream with linger 0 sends RST
            }
            Action::CloseBeforeHeaders => {
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            Action::Truncate(r) => {
                let _ = out.write_all(&r.head());
                let _ = out.write_all(&r.body[..r.body.len() / 2]);
                let _ = out.flush();
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

fn write_response(out: &mut TcpStream, r: &Response) -> io::Result<()> {
    let mut bytes = r.head();
    bytes.extend_from_slice(&r.body);
    out.write_all(&bytes)?;
    out.flush()
}

/// Keeps the connection open without answering until the peer closes it or the server
/// stops.
fn hang(reader: &mut BufReader<TcpStream>, stopping: &AtomicBool) {
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 1024];
    while !stopping.load(Ordering::Relaxed) {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads one request; `Ok(None)` at a clean end of stream.
pub fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = String::new();
    let mut header_bytes = 0;
    // Skip blank lines between requests (RFC 9112 §2.2).
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    header_bytes += line.len();
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target.to_owned(), String::new()),
    };
    let method = method.to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside the headers"));
        }
        header_bytes += line.len();
        if header_bytes > MAX_HEADER_BYTES {
            return Err(bad("headers too large"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').ok_or_else(|| bad("malformed header"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut req = Request {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
    };
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        req.body = read_chunked(reader)?;
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
        if len > MAX_BODY_BYTES {
            return Err(io::Error::other("body too large"));
        }
        req.body = vec![0; len];
        reader.read_exact(&mut req.body)?;
    }
    Ok(Some(req))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if body
            .len()
            .checked_add(size)
            .is_none_or(|n| n > MAX_BODY_BYTES)
        {
            return Err(io::Error::other("body too large"));
        }
        if size == 0 {
            // Trailers, then the final blank line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

/// Percent-decoding of a query string or form body (`+` is a space).
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `a=1&b=2` → pairs, decoded.
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (url_decode(k), url_decode(v)),
            None => (url_decode(p), String::new()),
        })
        .collect()
}

/// The fields of a `multipart/form-data` body.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Vec<(String, String)>> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut fields = Vec::new();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let (head, value) = part.split_once("\r\n\r\n")?;
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("name="))?
            .trim_matches('"')
            .to_owned();
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        fields.push((name, value.to_owned()));
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        assert_eq!(url_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(
            parse_form("data=%5B%5D&x=1&flag"),
            vec![
                ("data".into(), "[]".into()),
                ("x".into(), "1".into()),
                ("flag".into(), String::new())
            ]
        );
    }

    #[test]
    fn parses_requests_with_chunked_bodies() {
        let raw = b"POST /v25.0/1/events?x=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let req = read_request(&mut &raw[..]).unwrap().unwrap();
        assert_eq!(req.path, "/v25.0/1/events");
        assert_eq!(req.query, "x=1");
        assert_eq!(req.body, b"abcde");
    }

    #[test]
    fn huge_chunk_sizes_are_refused() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nffffffffffffffff\r\nx\r\n0\r\n\r\n";
        assert!(read_request(&mut &raw[..]).is_err());
    }

    #[test]
    fn parses_multipart() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n[1]\r\n--XX\r\nContent-Disposition: form-data; name=\"access_token\"\r\n\r\nT\r\n--XX--\r\n";
        let f = parse_multipart("multipart/form-data; boundary=XX", body).unwrap();
        assert_eq!(
            f,
            vec![
                ("data".into(), "[1]".into()),
                ("access_token".into(), "T".into())
            ]
        );
    }
}
