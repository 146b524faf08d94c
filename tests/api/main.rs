//! Integration tests: the real server on an ephemeral port, real HTTP clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod config;
mod context;
mod health;
mod helpers;
mod nlu;
mod reply;
mod webhook;
