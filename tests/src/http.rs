//! A minimal HTTP/1.1 client over a raw TCP socket: it sends exactly the
//! bytes it is given (invalid UTF-8, CR/LF, huge targets) and reads the
//! answer, so hostile requests can be tested.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine;
use socket2::{Domain, Socket, Type};

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code (0 when the connection closed without an answer).
    pub status: u16,
    /// Headers, names lower case.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy).
    pub body: String,
}

impl Response {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` to 127.0.0.1:`port` and reads the whole answer.
pub fn raw(port: u16, request: &[u8]) -> Response {
    raw_at(SocketAddr::from(([127, 0, 0, 1], port)), None, request)
}

/// Sends `request` to `server` from the local address `source` (any when
/// `None`; another address needs it on a local interface) and reads the
/// whole answer.
pub fn raw_at(server: SocketAddr, source: Option<IpAddr>, request: &[u8]) -> Response {
    let stream = match source {
        None => TcpStream::connect(server).expect("connect"),
        Some(ip) => {
            let socket =
                Socket::new(Domain::for_address(server), Type::STREAM, None).expect("socket");
            socket
                .bind(&SocketAddr::new(ip, 0).into())
                .unwrap_or_else(|e| panic!("bind {ip}: {e}"));
            socket
                .connect(&server.into())
                .unwrap_or_else(|e| panic!("connect {server} from {ip}: {e}"));
            socket.into()
        }
    };
    exchange(stream, request)
}

/// Sends `request` on an already connected `stream` and reads the whole
/// answer. A connection the server drops mid-way yields what arrived (an
/// empty answer has status 0), never a panic.
pub fn exchange(mut stream: TcpStream, request: &[u8]) -> Response {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let _ = stream.write_all(request);
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    parse(&buf)
}

/// Builds and sends a request.
pub fn request(
    port: u16,
    method: &str,
    target: &str,
    auth: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    raw(
        port,
        &build(
            &format!("127.0.0.1:{port}"),
            method,
            target,
            auth,
            headers,
            body,
        ),
    )
}

/// The bytes of a request to `host` (the Host header).
pub fn build(
    host: &str,
    method: &str,
    target: &str,
    auth: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: dyndns-tests/1.0\r\n").into_bytes();
    if let Some((u, p)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req.extend_from_slice(format!("Authorization: Basic {token}\r\n").as_bytes());
    }
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if let Some(b) = body {
        req.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    if let Some(b) = body {
        req.extend_from_slice(b);
    }
    req
}

fn parse(buf: &[u8]) -> Response {
    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Response {
            status: 0,
            headers: vec![],
            body: String::from_utf8_lossy(buf).into_owned(),
        };
    };
    let head = String::from_utf8_lossy(&buf[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        if data.len() < start + size {
            out.extend_from_slice(&data[start..]);
            break;
        }
        out.extend_from_slice(&data[start..start + size]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}
