//! The commands, one file per verb (as netavark's `commands/`): each wires
//! the pipeline input → config → policy → plan → apply → record, and turns
//! every error into the one user-facing [`HookError`].

mod check;
mod nspawn;
mod poststop;
mod prestart;
mod relabel;
mod volumes;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::error::HookError;
use crate::hardening::CapProfile;
use crate::input::bundle::Bundle;
use crate::input::host::Host;
use crate::input::state::State;

/// Run a verb; `Ok` carries the exit status (0 except for `nspawn`, which
/// exits with systemd-nspawn's). `caller_env` is the environment the
/// process was started with, handed to systemd-nspawn only.
pub fn run(cli: Cli, caller_env: Vec<(OsString, OsString)>) -> Result<u8, HookError> {
    let config_path = cli.config.as_deref().map(absolute).transpose()?;
    match cli.command {
        Command::Nspawn { volumes, args } => {
            crate::logging::set_stage("nspawn");
            // nspawn resolves a relative --directory (and, without one,
            // takes the machine) from the caller's working directory: it
            // gets it back; the launcher itself works from /.
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            crate::hardening::leave_cwd()
                .map_err(|e| HookError::failed("nspawn", format!("chdir /: {e}")))?;
            let config = load_config(config_path.as_deref(), cli.log_level)?;
            drop_caps(CapProfile::Launch)?;
            nspawn::run(
                &config,
                &volumes,
                nspawn::Launch {
                    args,
                    cwd,
                    env: caller_env,
                },
            )
        }
        command => run_verb(command, config_path.as_deref(), cli.log_level).map(|()| 0),
    }
}

fn run_verb(
    command: Command,
    config_path: Option<&std::path::Path>,
    log_level: Option<log::LevelFilter>,
) -> Result<(), HookError> {
    match command {
        Command::Prestart => {
            crate::logging::set_stage("prestart");
            let state = State::read_from(std::io::stdin().lock())?;
            crate::logging::set_container(&state.id);
            crate::hardening::leave_cwd()
                .map_err(|e| HookError::failed("hook", format!("chdir /: {e}")))?;
            let host = detect_host()?;
            let config = load_config_for(config_path, log_level, &host)?;
            drop_caps(CapProfile::Attach)?;
            prestart::run(&config, &state, &host)
        }
        Command::Poststop => {
            crate::logging::set_stage("poststop");
            let state = State::read_from(std::io::stdin().lock())?;
            crate::logging::set_container(&state.id);
            crate::hardening::leave_cwd()
                .map_err(|e| HookError::failed("hook", format!("chdir /: {e}")))?;
            // Teardown never fails for a broken config: fall back to the
            // defaults to find the record, and say so.
            let host = detect_host().unwrap_or_else(|e| {
                log::warn!("{e}; assuming a rootful hook");
                Host::root()
            });
            let config = load_config_for(config_path, log_level, &host).unwrap_or_else(|e| {
                log::warn!("{e}; using the default state_dir to release the container");
                let mut c = Config::default();
                if let Some(d) = host.state_dir() {
                    c.state_dir = d;
                }
                c
            });
            if let Err(e) = drop_caps(CapProfile::Inspect) {
                log::warn!("{e}");
            }
            poststop::run(&config, &state);
            Ok(())
        }
        Command::Check {
            bundle,
            annotations,
            format,
        } => {
            let bundle = absolute(&bundle)?;
            let host = detect_host()?;
            let config = load_config_for(config_path, log_level, &host)?;
            drop_caps(CapProfile::Inspect)?;
            check::run(&config, &host, &bundle, &annotations, format)
        }
        Command::Relabel {
            path,
            context,
            always,
            threads,
        } => {
            load_config(config_path, log_level)?;
            // As prestart: trusted.* xattrs need CAP_SYS_ADMIN, labels on
            // others' files CAP_FOWNER.
            drop_caps(CapProfile::Attach)?;
            relabel::run(&path, &context, always, threads)
        }
        Command::Volumes {
            command,
            format,
            size,
        } => {
            let host = detect_host()?;
            let config = load_config_for(config_path, log_level, &host)?;
            volumes::run(&config, command, format, size)
        }
        // Dispatched by `run`, which keeps its exit status.
        Command::Nspawn { .. } => Err(HookError::failed("nspawn", "not a verb without a status")),
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "oci-volume-hook", &mut out);
            out.flush()
                .map_err(|e| HookError::failed("completions", e.to_string()))
        }
    }
}

/// The directories no U, z or Z walk may change: system paths, and the
/// hook's own `volumes_root` and `state_dir` with every directory above.
fn protected(config: &Config) -> crate::apply::Protected {
    crate::apply::Protected::new(&[
        ("volumes_root", &config.volumes_root),
        ("state_dir", &config.state_dir),
    ])
}

fn drop_caps(profile: CapProfile) -> Result<(), HookError> {
    crate::hardening::drop_capabilities(profile)
        .map_err(|e| HookError::failed("hook", format!("dropping capabilities: {e}")))
}

fn absolute(p: &std::path::Path) -> Result<PathBuf, HookError> {
    std::path::absolute(p).map_err(|e| HookError::invalid("path", format!("{}: {e}", p.display())))
}

/// Rootful, rootless or per-user (`input::host`): the mode, said in the log.
fn detect_host() -> Result<Host, HookError> {
    let host = Host::detect()?;
    if host.per_user() {
        log::debug!("mode: {}", host.describe());
    }
    Ok(host)
}

fn load_config(
    path: Option<&std::path::Path>,
    cli_level: Option<log::LevelFilter>,
) -> Result<Config, HookError> {
    load_config_for(path, cli_level, &Host::root())
}

fn load_config_for(
    path: Option<&std::path::Path>,
    cli_level: Option<log::LevelFilter>,
    host: &Host,
) -> Result<Config, HookError> {
    let config = Config::load_for(path, host)?;
    let level = cli_level
        .or_else(|| config.log_level.as_deref().and_then(|l| l.parse().ok()))
        .unwrap_or(log::LevelFilter::Info);
    crate::logging::set_level(level);
    log::debug!("config: {}", config.origin);
    if let Some(n) = &config.narrowing {
        log::debug!("narrowed by {}", n.path.display());
    }
    Ok(config)
}

/// The annotations a hook acts on: config.json's, overridden by the state's
/// (podman's poststop state carries fewer; a runtime may add its own).
fn annotations(state: Option<&State>, bundle: &Bundle) -> BTreeMap<String, String> {
    let mut all = bundle.spec.annotations.clone();
    if let Some(s) = state {
        all.extend(s.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    all
}
