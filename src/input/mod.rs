//! Input, the first layer (untrusted): what the runtime says (the state on stdin, the
//! bundle's config.json), what the user asked (the annotation), and what
//! the host says about SELinux.

pub mod annotations;
pub mod bundle;
pub mod host;
pub mod nspawn;
pub(crate) mod selinux;
pub mod state;
