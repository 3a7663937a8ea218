//! The web phone page (`--web`, `[web] listen`) as a browser meets it: off
//! by default; each file with its content type and the security headers;
//! 404 and 405; `/config.json` naming the public listener's real port (also
//! after `:0`), the request's host on a wildcard listener, `wss` with TLS,
//! `dev`; the settings' refusals. A real `beckon-server` process each, killed
//! when dropped (and gone with this process: its stdin closes).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// A `beckon-server serve` with its port file read.
struct Server {
    child: Child,
    dir: PathBuf,
    ports: Value,
}

impl Server {
    /// `serve --store memory --exit-on-stdin-close` with `args`.
    fn start(args: &[&str]) -> Server {
        let dir = scratch();
        let port_file = dir.join("ports.json");
        let child = Command::new(env!("CARGO_BIN_EXE_beckon-server"))
            .args(["serve", "--store", "memory", "--exit-on-stdin-close"])
            .args(args)
            .arg("--port-file")
            .arg(&port_file)
            .env_remove("BECKON_SECRET")
            .env("BECKON_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("start beckon-server");
        let mut server = Server {
            child,
            dir,
            ports: Value::Null,
        };
        let started = Instant::now();
        let text = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("beckon-server exited ({status}): {}", server.log());
            }
            assert!(started.elapsed() < WAIT, "beckon-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        server.ports = serde_json::from_str(&text).unwrap();
        server
    }

    fn port(&self, key: &str) -> u16 {
        self.ports[key]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {}", self.ports))
    }

    fn web(&self) -> u16 {
        self.port("web")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("beckon-web-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One HTTP/1.1 answer: status code, headers (names lowercase), body.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// `method path` on 127.0.0.1:`port` with `host` as the Host header.
fn request(port: u16, method: &str, path: &str, host: &str) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer {
        status: status.parse().unwrap(),
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(port: u16, path: &str) -> Answer {
    request(port, "GET", path, &format!("127.0.0.1:{port}"))
}

fn repo_file(path: &str) -> Vec<u8> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The headers every answer of the page's listener carries.
fn assert_security_headers(answer: &Answer, ws_url: &str) {
    assert_eq!(answer.header("cache-control"), "no-cache");
    assert_eq!(answer.header("x-content-type-options"), "nosniff");
    let csp = answer.header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        &format!("connect-src 'self' {ws_url}"),
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(
            csp.split(';').any(|d| d.trim() == directive),
            "no `{directive}` in: {csp}"
        );
    }
    assert!(!csp.contains("unsafe"), "{csp}");
}

#[test]
fn off_by_default() {
    let server = Server::start(&["--dev", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
    assert!(server.ports["web"].is_null(), "{}", server.ports);
    assert!(!server.log().contains("web phone page"), "{}", server.log());
    // Nor is the page on the admin or the public address.
    assert_eq!(get(server.port("admin"), "/").status, 404);
    assert_eq!(get(server.port("admin"), "/beckon.js").status, 404);
    let mut public = TcpStream::connect(("127.0.0.1", server.port("listen"))).unwrap();
    public.set_read_timeout(Some(WAIT)).unwrap();
    public
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = public.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        !raw.contains("Beckon phone") && !raw.starts_with("HTTP/1.1 200"),
        "{raw}"
    );
}

#[test]
fn each_file_with_its_type_and_the_security_headers() {
    let server = Server::start(&["--dev", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0"]);
    let ws_url = format!("ws://127.0.0.1:{}", server.port("listen"));
    assert!(
        server
            .log()
            .contains(&format!("http://127.0.0.1:{}/", server.web())),
        "{}",
        server.log()
    );
    let files = [
        ("/", "text/html; charset=utf-8", "examples/web/index.html"),
        (
            "/index.html",
            "text/html; charset=utf-8",
            "examples/web/index.html",
        ),
        (
            "/phone.js",
            "text/javascript; charset=utf-8",
            "examples/web/phone.js",
        ),
        (
            "/phone.css",
            "text/css; charset=utf-8",
            "examples/web/phone.css",
        ),
        (
            "/beckon.js",
            "text/javascript; charset=utf-8",
            "bindings/web/dist/beckon.js",
        ),
    ];
    for (path, content_type, file) in files {
        let answer = get(server.web(), path);
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.header("content-type"), content_type, "{path}");
        assert_security_headers(&answer, &ws_url);
        assert!(answer.body == repo_file(file), "{path}: not {file}");
        // HEAD: the same head, no body.
        let head = request(server.web(), "HEAD", path, "127.0.0.1");
        assert_eq!(head.status, 200, "HEAD {path}");
        assert_eq!(head.header("content-type"), content_type, "HEAD {path}");
        assert_eq!(
            head.header("content-length"),
            answer.body.len().to_string(),
            "HEAD {path}"
        );
        assert!(head.body.is_empty(), "HEAD {path}");
    }
    // The page loads what is served, and nothing from elsewhere.
    let index = get(server.web(), "/").text().to_owned();
    for needed in ["/phone.js", "/phone.css"] {
        assert!(index.contains(needed), "index.html lacks {needed}");
    }
    assert!(!index.contains("http://") && !index.contains("https://"));
    let phone = get(server.web(), "/phone.js").text().to_owned();
    assert!(
        phone.contains("from '/beckon.js'"),
        "phone.js imports /beckon.js"
    );

    let config = get(server.web(), "/config.json");
    assert_eq!(config.status, 200);
    assert_eq!(config.header("content-type"), "application/json");
    assert_security_headers(&config, &ws_url);
}

#[test]
fn anything_else_is_404_and_only_get_and_head() {
    let server = Server::start(&["--dev", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0"]);
    let ws_url = format!("ws://127.0.0.1:{}", server.port("listen"));
    for path in [
        "/nope",
        "/index.htm",
        "/phone.js/",
        "/../Cargo.toml",
        "/examples/web/phone.js",
        "/bindings/web/dist/beckon.js",
        "/metrics",
        "/favicon.ico",
    ] {
        let answer = get(server.web(), path);
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.header("content-type"), "text/plain; charset=utf-8");
        assert_security_headers(&answer, &ws_url);
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/", "/config.json", "/beckon.js"] {
            let answer = request(server.web(), method, path, "127.0.0.1");
            assert_eq!(answer.status, 405, "{method} {path}");
            assert_eq!(answer.header("allow"), "GET, HEAD", "{method} {path}");
        }
    }
}

#[test]
fn config_json_names_the_public_listener_with_its_real_port() {
    // Bound to one address with :0: that address and the port it got,
    // whatever the page's host.
    let server = Server::start(&["--dev", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0"]);
    let port = server.port("listen");
    assert_ne!(port, 0);
    for host in ["127.0.0.1", "localhost:1234", "phone.example"] {
        let answer = request(server.web(), "GET", "/config.json", host);
        let config: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(
            config,
            serde_json::json!({ "server_url": format!("ws://127.0.0.1:{port}"), "dev": true })
        );
    }
    // The page's client connects there.
    let url = format!("ws://127.0.0.1:{port}");
    let connected = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url.as_str())).await
        });
    assert!(matches!(connected, Ok(Ok(_))), "{url}: {connected:?}");
}

#[test]
fn config_json_on_a_wildcard_listener_names_the_pages_host() {
    let secret = scratch().join("secret");
    std::fs::write(&secret, "a-long-enough-secret-for-tests").unwrap();
    let server = Server::start(&[
        "--secret-file",
        secret.to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
        "--web",
        "127.0.0.1:0",
    ]);
    let port = server.port("listen");
    for (host, url_host) in [
        ("phone.example:8080", "phone.example"),
        ("Phone.Example", "phone.example"),
        ("192.168.1.20:8080", "192.168.1.20"),
        ("[::1]:8080", "[::1]"),
    ] {
        let answer = request(server.web(), "GET", "/config.json", host);
        assert_eq!(answer.status, 200, "{host}");
        let config: Value = serde_json::from_slice(&answer.body).unwrap();
        let url = format!("ws://{url_host}:{port}");
        assert_eq!(
            config,
            serde_json::json!({ "server_url": url, "dev": false }),
            "{host}"
        );
        assert_security_headers(&request(server.web(), "GET", "/", host), &url);
    }
    // A host that is not one is not echoed anywhere.
    for host in ["evil.example/x", "a b", "x;y", "h:port", "[zz]:1"] {
        let answer = request(server.web(), "GET", "/config.json", host);
        assert_eq!(answer.status, 400, "{host}");
        let page = request(server.web(), "GET", "/", host);
        assert_eq!(page.status, 200, "{host}");
        let csp = page.header("content-security-policy");
        assert!(csp.contains("connect-src 'self';"), "{host}: {csp}");
    }
    let _ = std::fs::remove_dir_all(secret.parent().unwrap());
}

#[test]
fn config_json_says_wss_when_the_public_listener_has_tls() {
    use rcgen::{CertificateParams, KeyPair};
    let dir = scratch();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let server = Server::start(&[
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--web",
        "127.0.0.1:0",
        "--tls-cert",
        dir.join("cert.pem").to_str().unwrap(),
        "--tls-key",
        dir.join("key.pem").to_str().unwrap(),
    ]);
    let url = format!("wss://127.0.0.1:{}", server.port("listen"));
    let answer = get(server.web(), "/config.json");
    let config: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(config["server_url"], url.as_str());
    assert_security_headers(&answer, &url);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_config_files_web_section() {
    let dir = scratch();
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndev = true\n[web]\nlisten = \"127.0.0.1:0\"\nserver_url = \"wss://beckon.example:443\"\n",
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let answer = get(server.web(), "/config.json");
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "server_url": "wss://beckon.example:443", "dev": true })
    );
    assert_security_headers(&answer, "wss://beckon.example:443");
    drop(server);

    // Refusals name the key.
    for (toml, needle) in [
        (
            "[web]\nlisten = \"nope\"\n",
            "web.listen: 'nope' is not an address",
        ),
        ("[web]\nlisten = \"127.0.0.1\"\n", "web.listen"),
        ("[web]\nport = 8080\n", "unknown field `port`"),
        (
            "[web]\nlisten = \"127.0.0.1:0\"\nserver_url = \"http://x\"\n",
            "web.server_url",
        ),
        (
            "[web]\nlisten = \"127.0.0.1:0\"\nserver_url = \"ws://x'; script-src *\"\n",
            "web.server_url",
        ),
    ] {
        std::fs::write(&config, toml).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_beckon-server"))
            .args([
                "serve",
                "--dev",
                "--store",
                "memory",
                "--listen",
                "127.0.0.1:0",
            ])
            .args([
                "--exit-on-stdin-close",
                "--config",
                config.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{toml}: started");
        assert!(stderr.contains(needle), "{toml}: no '{needle}' in {stderr}");
    }
    // A bad --web is refused by the flag parser, naming the flag; an address
    // in use by the listener's bind, naming the key.
    let output = Command::new(env!("CARGO_BIN_EXE_beckon-server"))
        .args(["serve", "--dev", "--web", "nope"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--web"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_beckon-server"))
        .args([
            "serve",
            "--dev",
            "--store",
            "memory",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--exit-on-stdin-close", "--web", &taken])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&format!("web.listen {taken}")), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
