//! TLS for agentd's outgoing HTTP clients (the gateway's upstream, the API
//! client): rustls with its ring backend, chosen once per process because
//! reqwest is built without a default provider.

use std::sync::Once;

/// Selects rustls' ring backend once per process.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
