//! Real endpoints for notifications: an HTTP server on loopback that records
//! every POST (python3's http.server) and an SMTP server that prints every
//! mail (python3's smtpd DebuggingServer), on loopback or on an address lab
//! hosts reach. Both are killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Answers `POST /ok...` with 200 and `POST /fail...` with 500; records each
/// request as one JSON line `{"path": ..., "body": ...}`; prints its port.
const RECEIVER: &str = r#"
import http.server, json, sys
log = open(sys.argv[1], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        log.write(json.dumps({"path": self.path, "type": self.headers.get("Content-Type"), "body": body}) + "\n")
        log.flush()
        self.send_response(500 if self.path.startswith("/fail") else 200)
        self.end_headers()
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// A recording webhook endpoint.
pub struct Receiver {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    pub fn start() -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("received.jsonl");
        let mut child = Command::new("python3")
            .args(["-c", RECEIVER])
            .arg(&log)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the receiver prints its port");
        Receiver {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Every request so far, as `(path, content type, body as JSON)`.
    pub fn received(&self) -> Vec<(String, String, serde_json::Value)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let body = serde_json::from_str(v["body"].as_str().unwrap())
                    .unwrap_or_else(|e| panic!("a body that is not JSON ({e}): {l}"));
                (
                    v["path"].as_str().unwrap().to_string(),
                    v["type"].as_str().unwrap_or_default().to_string(),
                    body,
                )
            })
            .collect()
    }

    /// The one body POSTed to `/path`.
    pub fn body(&self, path: &str) -> serde_json::Value {
        let all = self.received();
        let mut at: Vec<_> = all.iter().filter(|(p, _, _)| p == path).collect();
        assert_eq!(at.len(), 1, "one POST to {path} wanted; received {all:?}");
        let (_, content_type, body) = at.pop().unwrap();
        assert_eq!(content_type, "application/json");
        body.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SMTP server that accepts any mail (no TLS, no login) and prints it.
pub struct MailServer {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl MailServer {
    /// On loopback.
    pub fn start() -> MailServer {
        Self::start_on("127.0.0.1")
    }

    /// On `ip`, an address of this machine: a lab network's gateway for lab hosts.
    pub fn start_on(ip: &str) -> MailServer {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mail.txt");
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-u",
                "-W",
                "ignore",
                "-m",
                "smtpd",
                "-n",
                "-c",
                "DebuggingServer",
            ])
            .arg(format!("{ip}:{port}"))
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let server = MailServer {
            child,
            port,
            out,
            _dir: dir,
        };
        wait_for("the SMTP server to listen", || {
            TcpStream::connect((ip, port)).is_ok()
        });
        server
    }

    /// What the server printed: each mail's headers and body.
    pub fn mail(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until a whole mail has been printed (its end marker).
    pub fn wait_for_mail(&self) -> String {
        wait_for("a mail", || self.mail().contains("END MESSAGE"));
        self.mail()
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (just freed).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `ready` for up to 10 s.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `cmd` without proxy settings, so webhooks on loopback are reached directly.
pub fn direct(cmd: &mut Command) -> &mut Command {
    for var in ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY"] {
        cmd.env_remove(var).env_remove(var.to_lowercase());
    }
    cmd
}

/// A `[notify]` section: Slack at `slack` (a plain URL), Discord at the URL
/// in `$SLIPWAY_TEST_DISCORD_WEBHOOK` (a secret from the environment), mail
/// to `smtp_port` on loopback without TLS.
pub fn section(slack: &str, smtp_port: u16) -> String {
    format!(
        "\n[notify]\nslack_webhook = \"{slack}\"\n\
         discord_webhook = {{ secret = true, env = \"SLIPWAY_TEST_DISCORD_WEBHOOK\" }}\n\
         [notify.email]\nsmtp = \"127.0.0.1:{smtp_port}\"\ntls = \"none\"\n\
         from = \"slipway@example.com\"\nto = [\"ops@example.com\"]\n"
    )
}
