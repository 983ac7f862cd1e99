//! The gateway on a real unix socket, with the scripted model as its upstream
//! (which logs every request it receives, so a test sees what got through).

mod connections;
mod forwarding;
mod requests;
mod routes;
mod support;
