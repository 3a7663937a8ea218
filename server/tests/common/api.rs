//! Calls to a server's API (docs/SERVER_API.md) over a plain TCP
//! connection, as a backend would make them.

use std::io::{Read, Write};

use serde_json::Value;

use super::{ServerProcess, WAIT};

/// One request to the API; (status, headers, JSON body or Null).
pub fn call(
    server: &ServerProcess,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String, Value) {
    call_within(server, method, path, key, body, WAIT)
}

/// [`call`], waiting up to `patience` for the answer.
pub fn call_within(
    server: &ServerProcess,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
    patience: std::time::Duration,
) -> (u16, String, Value) {
    let port = server.api_port.expect("the API is on");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(patience)).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(key) = key {
        request += &format!("Authorization: Bearer {key}\r\n");
    }
    let body = body.unwrap_or("");
    request += &format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        head.to_owned(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}
