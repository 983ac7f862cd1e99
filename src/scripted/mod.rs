//! The scripted model: a Messages API server that plays a scenario file instead
//! of calling a real model.
//!
//! Tests and the offline demo point the gateway's upstream (or a CLI's
//! `ANTHROPIC_BASE_URL`) at it; the real CLI then runs its agent loop and executes
//! the scripted tool calls for real. The model is the only simulated part.
//! It answers `POST /v1/messages` (streamed or not) by the number of assistant
//! messages in the request, `POST /v1/messages/count_tokens` with an estimate,
//! and serves what it received at `GET /_scripted/requests`.

mod reply;
mod request;
mod scenario;
mod server;
mod sse;
#[cfg(test)]
mod tests;

pub use request::RecordedRequest;
pub use scenario::{
    AfterLast, Block, ErrorAnswer, Framing, Scenario, ScenarioError, StopReason, Turn,
};
pub use server::ScriptedModel;
