//! Integration tests: the real server on an ephemeral port, real HTTP clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod capture;
mod config;
mod console;
mod context;
mod durable;
mod fake_llm;
mod faults;
mod health;
mod helpers;
mod identity;
mod knowledge;
mod limits;
mod llm;
mod nlu;
mod postgres;
mod proactive;
mod products;
mod rasa_project;
mod reply;
mod rest;
mod scaleout;
mod services;
mod socket_client;
mod socketio;
mod socketio_v4;
mod stream;
mod streaming;
mod users;
mod webhook;
