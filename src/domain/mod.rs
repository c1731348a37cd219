//! Pure types and rules, free of I/O.

pub mod appointment;
pub mod contact;
pub mod credits;
pub mod datetime;
pub mod keys;
pub mod load;
pub mod schedule;
pub mod staff;
pub mod status;
pub mod text;
