//! moncreneau: an appointment booking REST API, compatible with the MONCRENEAU API.

pub mod access_log;
pub mod auth;
pub mod booking_memo;
pub mod cli;
pub mod config;
pub mod database;
pub mod domain;
pub mod error;
pub mod events;
pub mod extract;
pub mod idempotency;
pub mod json_objects;
pub mod known_keys;
pub mod ledger;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod serve;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tenant;
pub mod webhooks;
