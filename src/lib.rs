//! oci-volume-hook: an OCI hook that attaches persistent, policy-checked
//! volumes to containers.
//!
//! The pipeline shows in the modules:
//! `state` + `bundle` (what the runtime says) → `annotations` (what the user
//! asked, untrusted) → `policy` with `config` (what the admin allows) →
//! `plan` (pure kernel steps) → `volume`, `owner`, `ns`, `rootfs`, `mount`
//! (apply)
//! → `record` (what poststop releases). `stage` wires them per command;
//! `sys` is the only module with `unsafe`.

pub mod annotations;
pub mod bundle;
pub mod claims;
pub mod cli;
pub mod config;
pub mod error;
pub mod hardening;
pub mod label;
pub mod log;
pub mod mount;
pub mod nfs;
pub mod ns;
pub mod owner;
pub mod plan;
pub mod policy;
pub mod record;
pub mod rootfs;
pub mod stage;
pub mod state;
pub mod sys;
pub mod volume;
pub mod walk;
pub mod wrapper;
