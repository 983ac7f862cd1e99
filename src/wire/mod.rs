//! The Messages API on the wire, as more than one room needs it: the request's
//! shape ([`MessagesRequest`]), Server-Sent Events parsing ([`SseParser`]), a
//! loopback HTTP server on its own task for the simulated models
//! ([`BackgroundServer`]), and TLS set-up for outgoing clients.
//!
//! A room of its own so that the gateway, the API client and the scripted model
//! share these without depending on one another.

mod background;
mod messages;
mod sse;
mod tls;

pub use background::BackgroundServer;
pub use messages::MessagesRequest;
pub use sse::{SseEvent, SseParser};
pub use tls::install_crypto_provider;
