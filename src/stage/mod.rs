//! Orchestration: one function per command, wiring the pipeline
//! state + bundle → requests → policy → plan → apply.

mod check;
mod poststop;
mod prestart;
mod volumes;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;

use crate::bundle::Bundle;
use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::error::HookError;
use crate::hardening::Stage;
use crate::state::State;

pub fn run(cli: Cli) -> Result<(), HookError> {
    let config_path = cli.config.as_deref().map(absolute).transpose()?;
    match cli.command {
        Command::Prestart => {
            crate::log::set_stage("prestart");
            let state = State::read_from(std::io::stdin().lock())?;
            crate::log::set_container(&state.id);
            crate::hardening::leave_cwd()
                .map_err(|e| HookError::failed("hook", format!("chdir /: {e}")))?;
            let config = load_config(config_path.as_deref(), cli.log_level)?;
            drop_caps(Stage::Attach)?;
            prestart::run(&config, &state)
        }
        Command::Poststop => {
            crate::log::set_stage("poststop");
            let state = State::read_from(std::io::stdin().lock())?;
            crate::log::set_container(&state.id);
            crate::hardening::leave_cwd()
                .map_err(|e| HookError::failed("hook", format!("chdir /: {e}")))?;
            // Teardown never fails for a broken config: fall back to the
            // defaults to find the record, and say so.
            let config = load_config(config_path.as_deref(), cli.log_level).unwrap_or_else(|e| {
                log::warn!("{e}; using the default state_dir to release the container");
                Config::default()
            });
            if let Err(e) = drop_caps(Stage::Inspect) {
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
            let config = load_config(config_path.as_deref(), cli.log_level)?;
            drop_caps(Stage::Inspect)?;
            check::run(&config, &bundle, &annotations, format)
        }
        Command::Relabel {
            path,
            context,
            always,
            threads,
        } => {
            load_config(config_path.as_deref(), cli.log_level)?;
            // As prestart: trusted.* xattrs need CAP_SYS_ADMIN, labels on
            // others' files CAP_FOWNER.
            drop_caps(Stage::Attach)?;
            relabel(&path, &context, always, threads)
        }
        Command::Volumes {
            command,
            format,
            size,
        } => {
            let config = load_config(config_path.as_deref(), cli.log_level)?;
            drop_caps(Stage::Inspect)?;
            match command {
                None => volumes::list(&config, format, size),
                Some(crate::cli::VolumesCommand::Inspect { name }) => {
                    volumes::inspect(&config, &name, format, size)
                }
            }
        }
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "oci-volume-hook", &mut out);
            out.flush()
                .map_err(|e| HookError::failed("completions", e.to_string()))
        }
    }
}

fn relabel(
    path: &std::path::Path,
    context: &str,
    always: bool,
    threads: Option<usize>,
) -> Result<(), HookError> {
    use crate::config::RelabelPolicy;
    use rustix::fs::{FileType, Mode, OFlags};
    let subject = format!("relabel {}", path.display());
    if crate::label::Context::parse(context).is_none() {
        return Err(HookError::invalid(
            subject,
            format!("{} is not an SELinux context", crate::error::quote(context)),
        ));
    }
    let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| HookError::failed(&subject, format!("open: {e}")))?;
    let st =
        rustix::fs::fstat(&fd).map_err(|e| HookError::failed(&subject, format!("fstat: {e}")))?;
    let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    let policy = if always {
        RelabelPolicy::Always
    } else {
        RelabelPolicy::OnChange
    };
    let threads = threads.unwrap_or_else(crate::walk::default_threads);
    let start = std::time::Instant::now();
    let outcome = crate::label::relabel(&fd, is_dir, context, policy, threads)
        .map_err(|e| e.about(&subject))?;
    let secs = start.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    let line = match outcome {
        crate::label::Outcome::Skipped => format!(
            "skipped {}: already labelled {context} by a completed relabel ({:.3} ms)",
            path.display(),
            secs * 1e3
        ),
        crate::label::Outcome::Walked { stats, changed, .. } => format!(
            "relabelled {} to {context}: {} entries, {changed} changed, {} mounts skipped, {threads} threads, {:.3} s, {:.0} entries/s",
            path.display(),
            stats.entries + 1,
            stats.mounts_skipped,
            secs,
            (stats.entries + 1) as f64 / secs.max(1e-9)
        ),
    };
    writeln!(out, "{line}").map_err(|e| HookError::failed(&subject, e.to_string()))
}

fn drop_caps(stage: Stage) -> Result<(), HookError> {
    crate::hardening::drop_capabilities(stage)
        .map_err(|e| HookError::failed("hook", format!("dropping capabilities: {e}")))
}

fn absolute(p: &std::path::Path) -> Result<PathBuf, HookError> {
    std::path::absolute(p).map_err(|e| HookError::invalid("path", format!("{}: {e}", p.display())))
}

fn load_config(
    path: Option<&std::path::Path>,
    cli_level: Option<log::LevelFilter>,
) -> Result<Config, HookError> {
    let config = Config::load(path)?;
    let level = cli_level
        .or_else(|| config.log_level.as_deref().and_then(|l| l.parse().ok()))
        .unwrap_or(log::LevelFilter::Info);
    crate::log::set_level(level);
    log::debug!("config: {}", config.origin);
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
