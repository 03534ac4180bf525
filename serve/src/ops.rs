//! The operators' listener (`--metrics-listen ADDR`): `GET /health` and
//! `GET /metrics` over HTTP/1.1.
//!
//! `/health` answers 200 with the policy version in force
//! (`{"status":"ok","policyVersion":3}`), and 503 while no valid version is
//! loaded (`"loading"`) or once shutdown has begun (`"stopping"`, so a load
//! balancer stops sending clients). `/metrics` is [`Metrics::encode`] in
//! Prometheus' text format.

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// What the handlers read.
#[derive(Debug, Clone)]
struct Ops {
    metrics: Metrics,
    shutdown: Shutdown,
}

/// The `/health` and `/metrics` routes.
pub fn router(metrics: Metrics, shutdown: Shutdown) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
        .with_state(Ops { metrics, shutdown })
}

/// Serves [`router`] on `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: Shutdown,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, shutdown))
        .with_graceful_shutdown(stop)
        .await
}

async fn health(State(ops): State<Ops>) -> impl IntoResponse {
    let (status, body) = match ops.metrics.policy_version() {
        _ if ops.shutdown.is_stopping() => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "stopping"}),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "loading"}),
        ),
        Some(version) => (
            StatusCode::OK,
            serde_json::json!({"status": "ok", "policyVersion": version}),
        ),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn prometheus(State(ops): State<Ops>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ops.metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Outcome, Protocol};
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use std::net::SocketAddr;
    use std::time::Duration;

    /// One real HTTP/1.1 GET with hyper's client.
    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let request = hyper::Request::get(path)
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn start(metrics: Metrics, shutdown: Shutdown) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = shutdown.closing_token();
        tokio::spawn(serve(listener, metrics, shutdown, async move {
            stop.cancelled().await
        }));
        addr
    }

    fn sample() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/sample")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_is_503_until_a_version_is_loaded_then_names_it() {
        let metrics = Metrics::new();
        let shutdown = Shutdown::new();
        let addr = start(metrics.clone(), shutdown.clone()).await;
        let (status, body) = get(addr, "/health").await;
        assert_eq!(status, 503);
        assert_eq!(body, r#"{"status":"loading"}"#);
        let engine = veil_engine::Engine::load(sample()).await.unwrap();
        metrics.attach(&engine);
        let (status, body) = get(addr, "/health").await;
        assert_eq!(status, 200);
        assert_eq!(body, r#"{"policyVersion":1,"status":"ok"}"#);
        // Once shutdown begins, load balancers are told to stop sending.
        shutdown.begin();
        let (status, body) = get(addr, "/health").await;
        assert_eq!(status, 503);
        assert_eq!(body, r#"{"status":"stopping"}"#);
        shutdown.run(Duration::from_secs(5), Some(&engine)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metrics_serve_the_counters_in_prometheus_format() {
        let metrics = Metrics::new();
        let engine = veil_engine::Engine::load(sample()).await.unwrap();
        metrics.attach(&engine);
        metrics.statement("ALICE", Outcome::Ok, Duration::from_millis(2));
        metrics.statement(
            "ALICE",
            Outcome::from_sqlstate(Some("42501")),
            Duration::from_millis(2),
        );
        metrics.authentication_failure(Protocol::Postgres);
        let _open = metrics.connection(Protocol::Postgres);
        let addr = start(metrics.clone(), Shutdown::new()).await;
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        for line in [
            r#"veil_statements_total{user="ALICE",status="ok"} 1"#,
            r#"veil_denials_total{user="ALICE",reason="not_authorized"} 1"#,
            r#"veil_authentication_failures_total{protocol="postgres"} 1"#,
            r#"veil_active_connections{protocol="postgres"} 1"#,
            "veil_policy_version 1",
            "veil_statement_duration_seconds_count 2",
            "# EOF",
        ] {
            assert!(body.lines().any(|l| l == line), "no {line:?} in\n{body}");
        }
        let (status, _) = get(addr, "/nothing").await;
        assert_eq!(status, 404);
    }
}
