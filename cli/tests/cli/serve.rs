//! `veil serve` as people start it: the listeners it announces, psql through
//! it, a broken policy edit refused with its file and line while the version
//! in force keeps serving, `/health` and `/metrics`, and a graceful stop on
//! SIGTERM that flushes the audit log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{path, workspace_copy};

/// A `veil serve` process and its stderr, line by line.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
            .arg("serve")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("veil serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stderr line containing `needle`, waiting up to 60 s.
    fn line_with(&mut self, needle: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "veil serve never printed '{needle}'; it printed:\n{}",
            self.seen.join("\n")
        );
    }

    /// The address announced on the line containing `needle`.
    fn address(&mut self, needle: &str) -> SocketAddr {
        let line = self.line_with(needle);
        line.split(|c: char| c.is_whitespace() || c == '/' || c == ',')
            .filter_map(|w| w.trim_end_matches(':').parse().ok())
            .next()
            .unwrap_or_else(|| panic!("no address in '{line}'"))
    }
}

fn psql(addr: SocketAddr, user: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-At", "-h", &addr.ip().to_string()])
        .args([
            "-p",
            &addr.port().to_string(),
            "-U",
            user,
            "-d",
            "analytics",
            "-c",
            sql,
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run psql ({e}): run scripts/test, which installs postgresql-client")
        });
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One HTTP/1.0 GET; the whole response (status line, headers, body).
fn http_get(addr: SocketAddr, target: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("the metrics listener accepts");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {target} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_reloads_reports_and_stops_gracefully() {
    let ws = workspace_copy("sample");
    let mut server = Server::start(&[
        "-w",
        path(ws.path()),
        "--trust",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--snowflake-listen",
        "127.0.0.1:0",
    ]);
    let pg = server.address("over the PostgreSQL protocol on");
    let metrics = server.address("Health and metrics on");
    let snowflake = server.address("Snowflake's connector protocol on");
    assert!(pg.ip().is_loopback() && metrics.ip().is_loopback() && snowflake.ip().is_loopback());
    TcpStream::connect(snowflake).expect("the Snowflake listener accepts");

    let before = psql(pg, "alice", "SELECT count(*) FROM customers");
    assert!(before.trim().parse::<u64>().is_ok(), "{before}");

    // A broken edit is refused with its file and line; the version in
    // force keeps serving.
    let rows = ws.path().join("policies/rows.yaml");
    let mut text = std::fs::read_to_string(&rows).unwrap();
    text.push_str("\n  - name: [unclosed\n");
    std::fs::write(&rows, text).unwrap();
    let refused = server.line_with("was refused");
    assert!(refused.contains("rows.yaml"), "{refused}");
    assert_eq!(psql(pg, "alice", "SELECT count(*) FROM customers"), before);

    let health = http_get(metrics, "/health");
    assert!(
        health.starts_with("HTTP/1.0 200") || health.starts_with("HTTP/1.1 200"),
        "{health}"
    );
    assert!(health.contains("\"policyVersion\""), "{health}");
    let prometheus = http_get(metrics, "/metrics");
    assert!(
        prometheus.contains("veil_policy_reloads_total{outcome=\"failed\"} 1"),
        "{prometheus}"
    );
    assert!(prometheus.contains("veil_statements_total"), "{prometheus}");

    let pid = server.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "veil serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    server.line_with("stopped; the audit log is flushed");
    let audit = std::fs::read_to_string(ws.path().join("state/audit.jsonl")).unwrap();
    let statement = audit
        .lines()
        .find(|l| l.contains("SELECT count(*) FROM customers"))
        .unwrap_or_else(|| panic!("no audit record of alice's statement:\n{audit}"));
    assert!(
        statement.contains("\"applicationName\":\"psql\""),
        "{statement}"
    );
    assert!(
        statement.contains("\"clientAddress\":\"127.0.0.1:"),
        "{statement}"
    );
}

#[test]
fn the_snowflake_listener_serves_alone() {
    let ws = workspace_copy("sample");
    let mut server = Server::start(&[
        "-w",
        path(ws.path()),
        "--trust",
        "--snowflake-listen",
        "127.0.0.1:0",
        "--no-watch",
    ]);
    let snowflake = server.address("Snowflake's connector protocol on");
    TcpStream::connect(snowflake).expect("the Snowflake listener accepts");
    assert!(
        !server
            .seen
            .iter()
            .any(|l| l.contains("over the PostgreSQL protocol")),
        "no PostgreSQL listener without --listen: {:?}",
        server.seen
    );
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "veil serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
