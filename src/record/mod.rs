//! Records, the last layer: what prestart attached and poststop releases, one file per
//! container in the state dir ([`store`]), and the access claims read from
//! them ([`claims`]).

pub mod claims;
mod store;
pub mod usage;

pub(crate) use store::{now, pid_start_time, Record, StateDir};
