//! Who is connected, for the audit records of the servers (`veil serve`):
//! the client's address and the application name it announced.
//!
//! A server runs each connection inside [`with_client`]; every audit
//! record written while that connection's statements plan, run and stream
//! their rows carries the client (tokio task-local state, so sessions,
//! their options and the library's callers are unchanged). Outside a
//! server, records have no client.

use std::future::Future;
use std::sync::{Arc, RwLock};

/// One connected client.
#[derive(Debug, Default)]
pub struct ClientInfo {
    address: Option<String>,
    application_name: RwLock<Option<String>>,
}

impl ClientInfo {
    /// A client connected from `address` (`ip:port`).
    pub fn new(address: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            address: Some(address.into()),
            application_name: RwLock::new(None),
        })
    }

    /// The client's address.
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }

    /// Records the application name the client announced (at startup or
    /// with `SET application_name`); empty names are no name.
    pub fn set_application_name(&self, name: &str) {
        let name = (!name.is_empty()).then(|| name.to_string());
        match self.application_name.write() {
            Ok(mut slot) => *slot = name,
            Err(poisoned) => *poisoned.into_inner() = name,
        }
    }

    /// The application name, if the client announced one.
    pub fn application_name(&self) -> Option<String> {
        match self.application_name.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

tokio::task_local! {
    static CLIENT: Arc<ClientInfo>;
}

/// Runs `f` (a connection's whole life) with `client` as the client of
/// every audit record written inside it.
pub async fn with_client<F: Future>(client: Arc<ClientInfo>, f: F) -> F::Output {
    CLIENT.scope(client, f).await
}

/// The client of the current connection, if inside [`with_client`].
pub fn current() -> Option<Arc<ClientInfo>> {
    CLIENT.try_with(Arc::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_name_the_client_only_inside_its_scope() {
        assert!(current().is_none());
        let client = ClientInfo::new("127.0.0.1:50000");
        client.set_application_name("psql");
        let seen = with_client(Arc::clone(&client), async {
            current().map(|c| (c.address().map(str::to_string), c.application_name()))
        })
        .await;
        assert_eq!(
            seen,
            Some((
                Some("127.0.0.1:50000".to_string()),
                Some("psql".to_string())
            ))
        );
        assert!(current().is_none());
    }
}
