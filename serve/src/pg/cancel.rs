//! Cancel requests: a client opens a second connection and names the
//! first by its process id and secret key; the statement running there
//! stops with SQLSTATE 57014 — while planning or while its rows stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use pgwire::api::cancel::CancelHandler;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use tokio::sync::watch;

/// A connection's cancel signal: each request bumps a counter that the
/// running statement watches.
#[derive(Debug)]
pub(crate) struct CancelSignal {
    tx: watch::Sender<u64>,
}

impl CancelSignal {
    fn new() -> Self {
        Self {
            tx: watch::channel(0).0,
        }
    }

    /// A watcher for the statement starting now: earlier requests do not
    /// count.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        let mut rx = self.tx.subscribe();
        rx.mark_unchanged();
        rx
    }

    fn fire(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Resolves when `rx` sees a cancel request (never, if the connection is
/// gone).
pub(crate) async fn cancelled(rx: &mut watch::Receiver<u64>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

type Key = (i32, Bytes);

/// Every logged-in connection's cancel key.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    keys: Arc<Mutex<HashMap<Key, Arc<CancelSignal>>>>,
}

/// Removes a connection's key when the connection ends.
pub(crate) struct Registration {
    keys: Arc<Mutex<HashMap<Key, Arc<CancelSignal>>>>,
    key: Key,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.remove(&self.key);
    }
}

impl Registry {
    /// Registers a connection's `(pid, secret)`.
    pub(crate) fn register(
        &self,
        pid: i32,
        secret: &SecretKey,
    ) -> (Arc<CancelSignal>, Registration) {
        let key = (pid, secret.to_bytes());
        let signal = Arc::new(CancelSignal::new());
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.insert(key.clone(), Arc::clone(&signal));
        (
            signal,
            Registration {
                keys: Arc::clone(&self.keys),
                key,
            },
        )
    }
}

#[async_trait]
impl CancelHandler for Registry {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, request.secret_key.to_bytes());
        let signal = {
            let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            keys.get(&key).cloned()
        };
        // An unknown key is ignored, as PostgreSQL does.
        if let Some(signal) = signal {
            signal.fire();
        }
    }
}
