//! Agent adapters: how to start an agent CLI and how to read what it prints.
//!
//! Claude Code is the first adapter ([`claude`]); its stream-json output becomes
//! the domain's [`AgentEvent`](crate::execution::AgentEvent)s. Lines an adapter
//! does not understand are kept, never fatal.

pub mod claude;
