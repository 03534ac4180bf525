//! What travels on the wire (Python's `http.client`, no connector): a
//! masked column's raw values appear nowhere in a response, Arrow or JSON;
//! malformed, oversized and unauthenticated requests get Snowflake-shaped
//! errors and the server stays up; a token reads only as its own login.

use base64::Engine as _;
use serde_json::{Value, json};
use veil_serve::snowflake::SnowflakeLimits;

use super::common::{TestServer, password, run_python, start};

fn raw(server: &TestServer, requests: Vec<Value>) -> Vec<Value> {
    let n = requests.len();
    let out = run_python(
        "raw_http.py",
        &[],
        &json!({"host": "127.0.0.1", "port": server.addr.port(), "requests": requests}),
    );
    assert_eq!(out.len(), n, "{out:?}");
    out
}

fn login(user: &str, save: &str) -> Value {
    json!({
        "method": "POST",
        "path": "/session/v1/login-request?databaseName=analytics&schemaName=public",
        "headers": {"Content-Type": "application/json"},
        "body": json!({"data": {"LOGIN_NAME": user, "PASSWORD": password(user)}}).to_string(),
        "save_token": save,
    })
}

fn query(token: &str, sql: &str) -> Value {
    json!({
        "method": "POST",
        "path": "/queries/v1/query-request?requestId=r1",
        "headers": {"Content-Type": "application/json", "Authorization": format!("Snowflake Token=\"{{{token}}}\"")},
        "body": json!({"sqlText": sql}).to_string(),
    })
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {resp}"))
}

/// The response text plus the decoded Arrow bytes of its rowsetBase64.
fn wire_text(resp: &Value) -> String {
    let mut text = resp["body"].as_str().unwrap_or_default().to_string();
    if let Some(b64) = body(resp)["data"]["rowsetBase64"].as_str() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("rowsetBase64 is base64");
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    text
}

const MASKED: &str = "SELECT name, email, ssn, phone, notes, balance FROM customers";
const RAW: &[&str] = &[
    "111-11-1111",
    "222-22-2222",
    "333-33-3333",
    "777-77-7777",
    "alice.smith@",
    "bob.jones@",
    "Bob Jones",
    "Gina Rossi",
    "late payer",
    "vip customer",
];

#[test]
fn masked_columns_carry_no_raw_value_on_the_wire() {
    let server = start(SnowflakeLimits::default());
    let out = raw(
        &server,
        vec![
            login("BOB", "bob"),
            query("bob", MASKED),
            query(
                "bob",
                "ALTER SESSION SET PYTHON_CONNECTOR_QUERY_RESULT_FORMAT = 'JSON'",
            ),
            query("bob", MASKED),
            login("CAROL", "carol"),
            query("carol", MASKED),
        ],
    );
    let arrow = &out[1];
    let json_rows = &out[3];
    assert_eq!(body(arrow)["data"]["queryResultFormat"], "arrow");
    assert_eq!(body(json_rows)["data"]["queryResultFormat"], "json");
    assert!(
        body(json_rows)["data"]["rowset"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    for resp in [arrow, json_rows] {
        assert_eq!(body(resp)["success"], true, "{resp}");
        let text = wire_text(resp);
        for raw in RAW {
            assert!(
                !text.contains(raw),
                "raw value {raw:?} is on the wire for BOB"
            );
        }
    }
    // The check can see raw values: CAROL's response carries them.
    let carol = wire_text(&out[5]);
    assert!(carol.contains("222-22-2222") && carol.contains("Bob Jones"));
}

#[test]
fn malformed_oversized_and_unauthenticated_requests_get_snowflake_errors() {
    let server = start(SnowflakeLimits {
        max_body_bytes: 64 * 1024,
        ..SnowflakeLimits::default()
    });
    let post = |path: &str, headers: Value, body: Option<String>| json!({"method": "POST", "path": path, "headers": headers, "body": body});
    let auth = json!({"Authorization": "Snowflake Token=\"{alice}\""});
    let big = "x".repeat(80 * 1024);
    let out = raw(
        &server,
        vec![
            login("ALICE", "alice"),
            // 1: no Authorization header
            post("/queries/v1/query-request", json!({}), Some(r#"{"sqlText":"SELECT 1"}"#.into())),
            // 2: a token no login has
            post("/queries/v1/query-request", json!({"Authorization": "Snowflake Token=\"forged\""}), Some(r#"{"sqlText":"SELECT 1"}"#.into())),
            // 3: a header that is not a Snowflake token
            post("/queries/v1/query-request", json!({"Authorization": "Basic YWxpY2U6eA=="}), Some(r#"{"sqlText":"SELECT 1"}"#.into())),
            // 4: not JSON
            post("/queries/v1/query-request", auth.clone(), Some("{\"sqlText\": ".into())),
            // 5: no sqlText
            post("/queries/v1/query-request", auth.clone(), Some("{}".into())),
            // 6: sqlText not a string
            post("/queries/v1/query-request", auth.clone(), Some(r#"{"sqlText": 42}"#.into())),
            // 7: bindings of the wrong shape
            post("/queries/v1/query-request", auth.clone(), Some(r#"{"sqlText": "SELECT ?", "bindings": {"1": {"type": "FIXED", "value": "1 OR 1=1"}}}"#.into())),
            // 8: larger than the limit
            post("/queries/v1/query-request", auth.clone(), Some(format!("{{\"sqlText\": \"SELECT '{big}'\"}}"))),
            // 9: gzip that is not gzip
            json!({"method": "POST", "path": "/queries/v1/query-request", "headers": {"Authorization": "Snowflake Token=\"{alice}\"", "Content-Encoding": "gzip"}, "body": "not gzip"}),
            // 10: gzip that inflates past the limit
            json!({"method": "POST", "path": "/queries/v1/query-request", "headers": auth.clone(), "body": " ", "repeat": 1_000_000, "gzip": true}),
            // 11: login without data
            post("/session/v1/login-request", json!({}), Some("{}".into())),
            // 12: an endpoint Veil does not serve
            post("/queries/v1/unknown", auth.clone(), Some("{}".into())),
            // 13: random bytes
            json!({"method": "POST", "path": "/queries/v1/query-request", "headers": auth.clone(), "raw_body": "00ff10c3a0"}),
            // 14: a gzip-compressed query that is fine
            json!({"method": "POST", "path": "/queries/v1/query-request", "headers": auth.clone(), "body": r#"{"sqlText": "SELECT CURRENT_USER()"}"#, "gzip": true}),
        ],
    );
    let expect: &[(usize, u64, &str)] = &[
        (1, 401, "390101"),
        (2, 401, "390104"),
        (3, 401, "390101"),
        (4, 400, "390400"),
        (5, 400, "390400"),
        (6, 400, "390400"),
        (7, 200, "002049"),
        (8, 413, "390413"),
        (9, 400, "390400"),
        (10, 413, "390413"),
        (11, 400, "390400"),
        (12, 404, "390404"),
        (13, 400, "390400"),
    ];
    for (i, status, code) in expect {
        let resp = &out[*i];
        assert_eq!(resp["status"], *status, "request {i}: {resp}");
        let b = body(resp);
        assert_eq!(b["success"], false, "request {i}: {b}");
        assert_eq!(b["code"], *code, "request {i}: {b}");
        assert!(
            b["message"].as_str().is_some_and(|m| !m.is_empty()),
            "request {i}: {b}"
        );
    }
    let ok = body(&out[14]);
    assert_eq!(ok["success"], true, "the server is still up: {ok}");
}

#[test]
fn a_token_reads_only_as_its_own_login() {
    let server = start(SnowflakeLimits {
        first_chunk_rows: 1,
        chunk_bytes: 1,
        ..SnowflakeLimits::default()
    });
    let who = "SELECT CURRENT_USER()";
    let renew = |master: &str, old: &str| {
        json!({"method": "POST", "path": "/session/token-request",
               "headers": {"Authorization": format!("Snowflake Token=\"{{{master}.master}}\"")},
               "body": format!("{{\"oldSessionToken\": \"{{{old}}}\", \"requestType\": \"RENEW\"}}")})
    };
    let mut chunked = query("alice", "SELECT id FROM customers ORDER BY id");
    chunked["save_chunk"] = json!("a");
    let out = raw(
        &server,
        vec![
            login("ALICE", "alice"),
            login("CAROL", "carol"),
            query("alice", who),
            query("carol", who),
            chunked,
            // 5: the chunk with ALICE's key, with CAROL's, with none
            json!({"method": "GET", "path": "{a.chunk}", "headers": {"x-veil-chunk-key": "{a.chunkkey}"}}),
            json!({"method": "GET", "path": "{a.chunk}", "headers": {"x-veil-chunk-key": "{carol.master}"}}),
            json!({"method": "GET", "path": "{a.chunk}"}),
            // 8: CAROL's master token cannot renew ALICE's session token
            renew("carol", "alice"),
            // 9: heartbeat, then ALICE closes her session
            json!({"method": "POST", "path": "/session/heartbeat", "headers": {"Authorization": "Snowflake Token=\"{alice}\""}}),
            json!({"method": "POST", "path": "/session?delete=true", "headers": {"Authorization": "Snowflake Token=\"{alice}\""}}),
            query("alice", who),
            query("carol", who),
            // 13: CAROL renews her token; the old one stops working
            renew("carol", "carol"),
            query("carol", who),
        ],
    );
    let user_of = |resp: &Value| -> String {
        let b = body(resp);
        assert_eq!(b["success"], true, "{b}");
        b["data"]["rowset"].to_string()
            + &String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(b["data"]["rowsetBase64"].as_str().unwrap_or_default())
                    .unwrap_or_default(),
            )
    };
    assert!(user_of(&out[2]).contains("ALICE") && !user_of(&out[2]).contains("CAROL"));
    assert!(user_of(&out[3]).contains("CAROL") && !user_of(&out[3]).contains("ALICE"));
    assert!(
        body(&out[4])["data"]["chunks"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    assert_eq!(out[5]["status"], 200, "{}", out[5]);
    assert_eq!(out[6]["status"], 403, "{}", out[6]);
    assert_eq!(out[7]["status"], 403, "{}", out[7]);
    assert_eq!(body(&out[8])["success"], false, "{}", out[8]);
    assert_eq!(body(&out[9])["success"], true);
    assert_eq!(body(&out[10])["success"], true);
    assert_eq!(out[11]["status"], 401);
    assert_eq!(body(&out[11])["code"], "390104");
    assert!(user_of(&out[12]).contains("CAROL"));
    let renewed = body(&out[13]);
    assert_eq!(renewed["success"], true, "{renewed}");
    assert_eq!(
        body(&out[14])["code"],
        "390104",
        "the renewed-away token is dead"
    );
}
