//! `volumes export` and `volumes import` (podman: `podman volume export`,
//! `podman volume import`).

use std::path::Path;

use crate::cli::Format;
use crate::config::Config;
use crate::error::HookError;

pub fn export(
    _config: &Config,
    name: &str,
    _output: Option<&Path>,
    _live: bool,
    _format: Format,
) -> Result<(), HookError> {
    Err(HookError::failed(
        format!("volume {name}"),
        "export: not implemented yet",
    ))
}

pub fn import(
    _config: &Config,
    name: &str,
    _file: Option<&Path>,
    _preserve_special: bool,
    _format: Format,
) -> Result<(), HookError> {
    Err(HookError::failed(
        format!("volume {name}"),
        "import: not implemented yet",
    ))
}
