//! Delivery's transports against real remotes: git's HTTP backend behind
//! lighttpd with basic auth, and OpenSSH with a key and a pinned host key.
//! The branch comes from a bundle as the sandbox hands it back; agentd's
//! push runs on the host with the credential, which nothing else sees.

#[path = "../common/mod.rs"]
mod common;

mod http;
mod ssh;
mod support;
