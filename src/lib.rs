//! oci-volume-hook: an OCI hook that attaches persistent, policy-checked
//! volumes to containers.
//!
//! The pipeline shows in the folders, each importing only earlier ones:
//! `input` (the runtime's state and bundle, the user's annotation, the
//! host's SELinux facts; untrusted) → `config` (what the admin allows,
//! NFS option syntax included) → `policy` (request + config → approved
//! volume) → `plan` (pure kernel steps, SELinux contexts included) →
//! `apply` (source, walk, relabel, owner, mount, ns, rootfs, nfs: the side
//! effects) → `record` (what poststop releases; claims). `command` wires
//! them per verb; `wrapper` is the `oci-volume-runtime` binary's logic (a
//! runtime wrapper that adds the hooks for docker and containerd). Beneath
//! them all: `error`, `sys` (the only `unsafe`), `fd`, `hardening`,
//! `logging`, `cli` (and `hook_args`, the hook stages' argument forms
//! read without clap).

pub mod apply;
pub mod cli;
pub mod command;
pub mod config;
pub mod error;
pub(crate) mod fd;
pub mod hardening;
pub mod hook_args;
pub mod input;
pub mod logging;
pub mod plan;
pub(crate) mod policy;
pub(crate) mod record;
pub(crate) mod sys;
pub mod wrapper;
