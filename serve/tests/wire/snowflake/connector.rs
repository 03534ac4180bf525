//! The connector's everyday calls: fetchall, fetch_pandas_all, cursor
//! descriptions, bindings, errors, roles and session statements, a large
//! result in downloaded chunks — each login getting exactly the library's
//! result for that user.

use serde_json::{Value, json};
use veil_serve::snowflake::SnowflakeLimits;

use super::common::{all, connector, contains, library_rows, rows, start};

const CUSTOMERS: &str = "SELECT * FROM customers ORDER BY id";
const ORDERS: &str = "SELECT * FROM orders ORDER BY order_id";

#[test]
fn fetchall_gives_each_login_the_librarys_result() {
    let server = start(SnowflakeLimits::default());
    let mut seen = Vec::new();
    for user in ["ALICE", "BOB", "CAROL"] {
        let out = connector(&server, user, json!({}), vec![all(CUSTOMERS), all(ORDERS)]);
        for (step, sql) in out.iter().zip([CUSTOMERS, ORDERS]) {
            assert_eq!(
                rows(step),
                library_rows(&server, user, sql),
                "{user}: {sql} through the connector differs from the library"
            );
        }
        seen.push(rows(&out[0]));
    }
    assert_ne!(seen[0], seen[2], "ALICE and CAROL see different customers");
    // CAROL sees raw SSNs; ALICE and BOB never do.
    assert!(contains(&seen[2], "222-22-2222"));
    for masked in &seen[..2] {
        for raw in ["111-11-1111", "222-22-2222", "333-33-3333"] {
            assert!(
                !contains(masked, raw),
                "raw SSN {raw} came back: {masked:?}"
            );
        }
    }
}

#[test]
fn fetch_pandas_all_matches_fetchall() {
    let server = start(SnowflakeLimits::default());
    let sql = "SELECT id, name, email, ssn, balance, signup_ts FROM customers ORDER BY id";
    for user in ["ALICE", "CAROL"] {
        let out = connector(
            &server,
            user,
            json!({}),
            vec![json!({"sql": sql, "fetch": "pandas"}), all(sql)],
        );
        let pandas = &out[0];
        assert_eq!(pandas["ok"], true, "{pandas}");
        let expected = library_rows(&server, user, sql);
        assert_eq!(pandas["count"], expected.len());
        assert_eq!(
            pandas["columns"],
            json!(["ID", "NAME", "EMAIL", "SSN", "BALANCE", "SIGNUP_TS"])
        );
        assert_eq!(
            pandas["dtypes"][0], "int64",
            "NUMBER(10,0) is int64: {pandas}"
        );
        assert!(
            pandas["dtypes"][5]
                .as_str()
                .unwrap_or_default()
                .starts_with("datetime64"),
            "TIMESTAMP_NTZ is a datetime: {pandas}"
        );
        // Text columns equal the library's, value by value.
        let got = rows(pandas);
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(&g[..4], &e[..4], "{user}");
        }
        assert_eq!(rows(&out[1]), expected);
    }
}

#[test]
fn cursor_description_reports_snowflake_types() {
    let server = start(SnowflakeLimits::default());
    let sql = "SELECT o.order_id, o.amount, o.order_date, o.status, c.signup_ts, o.amount > 10 AS big, 1.5::FLOAT AS f \
               FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.order_id LIMIT 3";
    let out = connector(
        &server,
        "CAROL",
        json!({}),
        vec![all(sql), json!({"sql": sql, "fetch": "describe"})],
    );
    for step in &out {
        let d = step["description"].as_array().cloned().unwrap_or_default();
        let col = |i: usize| d.get(i).cloned().unwrap_or(Value::Null);
        // (name, type_code, display_size, internal_size, precision, scale, null_ok)
        assert_eq!(col(0)[0], "ORDER_ID");
        assert_eq!(col(0)[1], 0, "NUMBER is FIXED (0): {step}");
        assert_eq!(
            (col(0)[4].clone(), col(0)[5].clone()),
            (json!(10), json!(0))
        );
        assert_eq!(col(1)[1], 0);
        assert_eq!(
            (col(1)[4].clone(), col(1)[5].clone()),
            (json!(10), json!(2))
        );
        assert_eq!(col(2)[1], 3, "DATE is 3: {step}");
        assert_eq!(col(3)[1], 2, "VARCHAR is TEXT (2): {step}");
        assert_eq!(col(3)[3], 10, "VARCHAR(10) keeps its length: {step}");
        assert_eq!(col(4)[1], 8, "TIMESTAMP_NTZ is 8: {step}");
        assert_eq!(col(5)[1], 13, "BOOLEAN is 13: {step}");
        assert_eq!(col(6)[1], 1, "FLOAT is REAL (1): {step}");
    }
    assert_eq!(rows(&out[0]), library_rows(&server, "CAROL", sql));
}

#[test]
fn pyformat_and_qmark_bindings() {
    let server = start(SnowflakeLimits::default());
    let literal =
        "SELECT id, name, email FROM customers WHERE id IN (2, 3) AND region = 'EU' ORDER BY id";
    let expected = library_rows(&server, "BOB", literal);
    assert!(!expected.is_empty());
    let pyformat = connector(
        &server,
        "BOB",
        json!({}),
        vec![
            json!({"sql": "SELECT id, name, email FROM customers WHERE id IN (%s, %s) AND region = %s ORDER BY id", "params": [2, 3, "EU"]}),
            json!({"sql": "SELECT id, name, email FROM customers WHERE id IN (%(a)s, %(b)s) AND region = %(r)s ORDER BY id", "params": {"a": 2, "b": 3, "r": "EU"}}),
            json!({"sql": "SELECT count(*) FROM customers WHERE name = %s", "params": ["O'Brien \\' OR 1=1 --"]}),
        ],
    );
    assert_eq!(rows(&pyformat[0]), expected);
    assert_eq!(rows(&pyformat[1]), expected);
    assert_eq!(rows(&pyformat[2]), vec![vec![Some("0".to_string())]]);
    let qmark = connector(
        &server,
        "BOB",
        json!({"paramstyle": "qmark"}),
        vec![
            json!({"sql": "SELECT id, name, email FROM customers WHERE id IN (?, ?) AND region = ? ORDER BY id", "params": [2, 3, "EU"]}),
            json!({"sql": "SELECT count(*) FROM customers WHERE name = ? OR ssn = ?", "params": ["O'Brien' OR 1=1 --", "222-22-2222"]}),
            json!({"sql": "SELECT ?::NUMBER(10,2) AS x, ? AS b", "params": [1.25, true]}),
        ],
    );
    assert_eq!(rows(&qmark[0]), expected);
    assert_eq!(
        rows(&qmark[1]),
        vec![vec![Some("0".to_string())]],
        "a bound SSN is compared with the masked value: {}",
        qmark[1]
    );
    assert_eq!(
        rows(&qmark[2]),
        vec![vec![Some("1.25".to_string()), Some("true".to_string())]]
    );
}

#[test]
fn errors_carry_snowflake_errno_and_sqlstate() {
    let server = start(SnowflakeLimits::default());
    let out = connector(
        &server,
        "ERIN",
        json!({}),
        vec![
            all("SELECT * FROM customers"),
            all("SELECT * FROM analytics.public.no_such_table"),
            all("SELEC 1"),
            all("INSERT INTO analytics.hr.employees (emp_id) VALUES (1)"),
            all("SELECT count(*) FROM analytics.hr.employees"),
        ],
    );
    for (i, table) in [
        (0, "ANALYTICS.PUBLIC.CUSTOMERS"),
        (1, "ANALYTICS.PUBLIC.NO_SUCH_TABLE"),
    ] {
        let e = &out[i];
        assert_eq!(e["ok"], false, "{e}");
        assert_eq!(e["errno"], 2003, "{e}");
        assert_eq!(e["sqlstate"], "42S02", "{e}");
        let msg = e["msg"].as_str().unwrap_or_default();
        assert!(
            msg.ends_with(&format!(
                "Object '{table}' does not exist or not authorized."
            )),
            "not granted and missing read the same: {msg}"
        );
    }
    assert_eq!(
        (out[2]["errno"].clone(), out[2]["sqlstate"].clone()),
        (json!(1003), json!("42000")),
        "{}",
        out[2]
    );
    assert_eq!(out[3]["errno"], 3001, "{}", out[3]);
    assert_eq!(out[3]["sqlstate"], "42501");
    assert!(
        out[3]["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("INSERT statements are not allowed")
    );
    assert_eq!(
        out[4]["ok"], true,
        "the session stays usable after errors: {}",
        out[4]
    );
}

#[test]
fn logins_are_checked_and_roles_granted() {
    let server = start(SnowflakeLimits::default());
    let bad_password = super::common::run_python(
        "sf_client.py",
        &[],
        &json!({"host": "127.0.0.1", "port": server.addr.port(), "user": "alice", "password": "wrong", "steps": []}),
    );
    let disabled = super::common::run_python(
        "sf_client.py",
        &[],
        &json!({"host": "127.0.0.1", "port": server.addr.port(), "user": "dave", "password": super::common::password("DAVE"), "steps": []}),
    );
    let unknown = super::common::run_python(
        "sf_client.py",
        &[],
        &json!({"host": "127.0.0.1", "port": server.addr.port(), "user": "mallory", "password": "x", "steps": []}),
    );
    for out in [&bad_password, &disabled, &unknown] {
        assert_eq!(out[0]["login"], true, "{out:?}");
        assert_eq!(
            out[0]["errno"], 390100,
            "one error for every failed login: {out:?}"
        );
    }
    assert_eq!(bad_password[0]["msg"], disabled[0]["msg"]);
}

#[test]
fn use_role_switches_only_among_granted_roles() {
    let server = start(SnowflakeLimits::default());
    let out = connector(
        &server,
        "CAROL",
        json!({"warehouse": "wh_local"}),
        vec![
            all(
                "SELECT CURRENT_ROLE(), CURRENT_USER(), CURRENT_WAREHOUSE(), CURRENT_DATABASE(), CURRENT_SCHEMA()",
            ),
            // Only the primary role counts from here (Snowflake's default is
            // secondary roles ALL).
            all("USE SECONDARY ROLES NONE"),
            all("USE ROLE hr_analyst"),
            all("SELECT CURRENT_ROLE()"),
            all("SELECT count(*) FROM customers"),
            all("USE ROLE analyst"),
            all("SELECT CURRENT_ROLE()"),
            all("USE ROLE compliance_officer"),
            all("SELECT count(*) FROM customers"),
            all("USE SECONDARY ROLES ALL"),
            all("USE SECONDARY ROLES NONE"),
            all("ALTER SESSION SET QUERY_TAG = 'veil-test' TIMEZONE = 'UTC'"),
            all("SELECT CURRENT_VERSION()"),
        ],
    );
    assert_eq!(
        rows(&out[0]),
        vec![vec![
            Some("COMPLIANCE_OFFICER".into()),
            Some("CAROL".into()),
            Some("WH_LOCAL".into()),
            Some("ANALYTICS".into()),
            Some("PUBLIC".into())
        ]]
    );
    assert_eq!(rows(&out[3]), vec![vec![Some("HR_ANALYST".into())]]);
    assert_eq!(
        out[4]["errno"], 2003,
        "HR_ANALYST is not granted CUSTOMERS: {}",
        out[4]
    );
    assert_eq!(out[5]["ok"], false, "ANALYST is not CAROL's: {}", out[5]);
    assert_eq!(out[5]["errno"], 2003);
    assert_eq!(out[5]["sqlstate"], "02000");
    assert_eq!(
        rows(&out[6]),
        vec![vec![Some("HR_ANALYST".into())]],
        "a refused USE ROLE keeps the role"
    );
    assert_eq!(
        rows(&out[8]),
        library_rows(&server, "CAROL", "SELECT count(*) FROM customers")
    );
    for step in &out[9..] {
        assert_eq!(step["ok"], true, "{step}");
    }
    assert!(
        rows(&out[12])[0][0]
            .as_deref()
            .unwrap_or_default()
            .starts_with("veil-")
    );
    // A login asking for a role it is not granted is refused.
    let refused = super::common::run_python(
        "sf_client.py",
        &[],
        &json!({"host": "127.0.0.1", "port": server.addr.port(), "user": "alice",
                "password": super::common::password("ALICE"), "role": "HR_ANALYST", "steps": []}),
    );
    assert_eq!(refused[0]["errno"], 390189, "{refused:?}");
}

#[test]
fn show_and_describe_list_only_what_the_login_may_see() {
    let server = start(SnowflakeLimits::default());
    let erin = connector(
        &server,
        "ERIN",
        json!({}),
        vec![
            all("SHOW TABLES IN ACCOUNT"),
            all("SHOW DATABASES"),
            all("SHOW SCHEMAS IN DATABASE analytics"),
            all("SHOW TERSE OBJECTS IN SCHEMA analytics.hr"),
            all("DESCRIBE TABLE analytics.hr.employees"),
            all("DESCRIBE TABLE analytics.public.customers"),
            all("SHOW COLUMNS IN TABLE analytics.hr.employees"),
            all("USE SCHEMA hr"),
            all("SELECT count(*) FROM employees"),
            all("USE SCHEMA public"),
        ],
    );
    let names = |step: &Value, col: usize| -> Vec<String> {
        rows(step)
            .into_iter()
            .filter_map(|r| r[col].clone())
            .collect()
    };
    assert_eq!(names(&erin[0], 1), vec!["EMPLOYEES"]);
    assert_eq!(names(&erin[1], 1), vec!["ANALYTICS"]);
    assert_eq!(names(&erin[2], 1), vec!["HR"]);
    assert_eq!(names(&erin[3], 1), vec!["EMPLOYEES"]);
    assert_eq!(
        names(&erin[4], 0),
        vec![
            "EMP_ID",
            "NAME",
            "DEPARTMENT",
            "SALARY",
            "MANAGER_ID",
            "HIRE_DATE"
        ]
    );
    assert_eq!(erin[5]["errno"], 2003, "{}", erin[5]);
    assert_eq!(names(&erin[6], 2).len(), 6);
    assert_eq!(
        rows(&erin[8]),
        library_rows(
            &server,
            "ERIN",
            "SELECT count(*) FROM analytics.hr.employees"
        )
    );
    assert_eq!(
        erin[9]["errno"], 2003,
        "ERIN sees no table in PUBLIC: {}",
        erin[9]
    );
    let alice = connector(&server, "ALICE", json!({}), vec![all("SHOW TABLES")]);
    assert_eq!(names(&alice[0], 1), vec!["CUSTOMERS", "ORDERS"]);
}

#[test]
fn a_million_rows_arrive_in_chunks() {
    let server = start(SnowflakeLimits::default());
    let sql = "SELECT UNNEST(range(0, 1000000)) AS n";
    let out = connector(
        &server,
        "ALICE",
        json!({}),
        vec![
            json!({"sql": sql, "fetch": "pandas", "no_rows": true, "sum": "N"}),
            json!({"sql": sql, "fetch": "count"}),
        ],
    );
    for step in &out {
        assert_eq!(step["ok"], true, "{step}");
        assert_eq!(step["count"], 1_000_000, "{step}");
        assert_eq!(step["sum"], "499999500000", "{step}");
        assert!(
            step["batches"].as_u64().unwrap_or(0) > 1,
            "downloaded in chunks: {step}"
        );
    }
    assert_eq!(
        server.server.open_sessions(),
        0,
        "closed connections end their sessions"
    );
}
