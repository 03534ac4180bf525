//! TLS for the PostgreSQL listener (`--tls-cert FILE --tls-key FILE`):
//! a certificate chain and its private key in PEM, served with rustls (the
//! `ring` provider pgwire is built with). Clients ask for TLS with
//! PostgreSQL's `SSLRequest` (`sslmode=require`) or connect with TLS
//! directly (`sslnegotiation=direct`, ALPN `postgresql`); logins still use
//! SCRAM-SHA-256 inside it, so the password never reaches the server.

use std::path::Path;
use std::sync::Arc;

use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use veil_engine::VeilError;

/// The ALPN protocol name of PostgreSQL's direct TLS negotiation.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

fn tls_error(path: &Path, message: impl std::fmt::Display) -> VeilError {
    VeilError::workspace(path.display().to_string(), message.to_string())
}

/// Reads `cert` (PEM: the server certificate first, then its chain) and
/// `key` (PEM: PKCS#8, PKCS#1 or SEC1) into an acceptor for the listener.
/// Errors name the file at fault.
pub fn acceptor(cert: &Path, key: &Path) -> veil_engine::Result<TlsAcceptor> {
    let cert_pem = std::fs::read(cert)
        .map_err(|e| tls_error(cert, format!("cannot read the TLS certificate: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(cert, format!("the TLS certificate is not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(tls_error(
            cert,
            "holds no certificate (expected PEM blocks of BEGIN CERTIFICATE).",
        ));
    }
    let key_pem = std::fs::read(key)
        .map_err(|e| tls_error(key, format!("cannot read the TLS private key: {e}")))?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        tls_error(
            key,
            format!("holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(cert, format!("cannot set up TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            tls_error(
                key,
                format!("does not fit the certificate {}: {e}", cert.display()),
            )
        })?;
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_generated_certificate_loads() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let c = write(dir.path(), "server.crt", &cert.cert.pem());
        let k = write(dir.path(), "server.key", &cert.signing_key.serialize_pem());
        assert!(acceptor(&c, &k).is_ok());
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let c = write(dir.path(), "server.crt", &a.cert.pem());
        let other_key = write(dir.path(), "other.key", &b.signing_key.serialize_pem());
        let empty = write(dir.path(), "empty.crt", "not a certificate\n");
        let missing = dir.path().join("missing.key");
        let message = |r: veil_engine::Result<TlsAcceptor>| match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        };
        let m = message(acceptor(&empty, &other_key));
        assert!(
            m.contains("empty.crt") && m.contains("no certificate"),
            "{m}"
        );
        let m = message(acceptor(&c, &missing));
        assert!(
            m.contains("missing.key") && m.contains("cannot read"),
            "{m}"
        );
        let m = message(acceptor(&c, &c));
        assert!(m.contains("server.crt") && m.contains("private key"), "{m}");
        let m = message(acceptor(&c, &other_key));
        assert!(m.contains("other.key") && m.contains("does not fit"), "{m}");
    }
}
