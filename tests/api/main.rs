//! The integration suite: the real server over HTTP, a fresh Postgres database per test.

mod contract;
mod helpers;
mod receiver;
mod relay;
mod typed;

mod admin;
mod api_keys;
mod appointments;
mod auth;
mod availability;
mod booking_batches;
mod booking_memo;
mod booking_write;
mod capacity;
mod check_in;
mod concurrency;
mod credits;
mod database_faults;
mod departments;
mod hostile_input;
mod hostile_receivers;
mod idempotency;
mod metrics;
mod migrations;
mod model;
mod operations;
mod pool;
mod rate_limits;
mod reschedule;
mod resilience;
mod tenancy;
mod webhook_delivery;
mod webhook_isolation;
mod webhooks;
mod workers;
