//! `volumes rm NAME... [--force]` and `volumes prune [--force] [--filter
//! until=DURATION]` (podman: `podman volume rm`, `podman volume prune`).
//!
//! - Only managed volumes (in volumes_root); admin `path` and NFS volumes
//!   are refused by name. prune leaves every `[volumes.X]` volume alone.
//! - Under the claims lock, so no container can claim the volume while it
//!   goes: a volume a live container holds is refused, naming the
//!   container; `--force` never overrides that.
//! - A volume holding a mount point is refused before anything is removed
//!   (the mount and what it shows stay untouched; unmount it first).
//! - Deleted with the walker (`walk::remove_contents`: unlinkat beneath
//!   the parent's fd, no symlink followed, no mount entered), then the
//!   root, by name, only if it is still the directory that was emptied.
//! - Confirmation: rm asks before removing a non-empty volume when stdin is
//!   a terminal; prune always asks when there is something to remove.
//!   `--force` skips the question; without a terminal and without
//!   `--force` both refuse. An empty volume is removed without a question.

use std::os::fd::AsFd;

use serde::Serialize;

use super::{cstr, holders, human, live_records, managed_name, open_volume, parse, OpenVolume};
use crate::apply::walk;
use crate::cli::Format;
use crate::config::Config;
use crate::error::{printable, HookError};
use crate::record::Record;

#[derive(Debug, Serialize)]
struct Gone {
    name: String,
    bytes_freed: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    removed: Vec<Gone>,
    /// Volumes kept because the question was answered no.
    kept: Vec<String>,
    bytes_freed: u64,
}

pub fn rm(config: &Config, names: &[String], force: bool, format: Format) -> Result<(), HookError> {
    let held = live_records(config)?;
    let live = &held.records;
    let mut report = Report {
        removed: Vec::new(),
        kept: Vec::new(),
        bytes_freed: 0,
    };
    let mut errors: Vec<HookError> = Vec::new();
    for name in names {
        match rm_one(config, name, force, live, true) {
            Ok(Some(bytes)) => {
                report.bytes_freed += bytes;
                report.removed.push(Gone {
                    name: name.clone(),
                    bytes_freed: bytes,
                })
            }
            Ok(None) => report.kept.push(name.clone()),
            Err(e) => errors.push(e),
        }
    }
    print(&report, format, false)?;
    // Every error is said; the last one is main's line and exit code.
    let last = errors.pop();
    for e in errors {
        log::error!("{e}");
    }
    last.map_or(Ok(()), Err)
}

pub fn prune(
    config: &Config,
    force: bool,
    filter: Option<&str>,
    format: Format,
) -> Result<(), HookError> {
    let until = filter
        .map(parse::prune_filter)
        .transpose()
        .map_err(|why| HookError::invalid("volumes prune", why))?;
    let held = live_records(config)?;
    let live = &held.records;
    let now = crate::record::now();
    let mut due: Vec<String> = Vec::new();
    let mut names: Vec<String> = match std::fs::read_dir(&config.volumes_root) {
        Ok(rd) => rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    for name in names {
        // Admin-defined volumes are the admin's, even managed ones.
        if crate::input::annotations::validate_name(&name).is_err()
            || config.volumes.contains_key(&name)
        {
            continue;
        }
        let v = match open_volume(config, &name) {
            Ok(Some(v)) => v,
            Ok(None) => continue,
            Err(e) => {
                log::warn!("{e}; not pruned");
                continue;
            }
        };
        if !holders(live, &v.path, Some(v.id)).is_empty() {
            continue;
        }
        let usage = crate::record::usage::read(v.fd.as_fd());
        let changed = rustix::fs::fstat(&v.fd)
            .map(|st| (st.st_mtime.max(st.st_ctime)).max(0) as u64)
            .unwrap_or(now);
        if parse::prune_due(usage.and_then(|u| u.last_used()), changed, now, until) {
            due.push(name);
        }
    }
    let mut report = Report {
        removed: Vec::new(),
        kept: Vec::new(),
        bytes_freed: 0,
    };
    if !due.is_empty() {
        let question = format!(
            "WARNING! This will remove {} volume(s) no running container uses: {}. Are you sure you want to continue?",
            due.len(),
            due.join(", ")
        );
        let refusal = format!("would remove {}", due.join(", "));
        if !super::confirm(&question, &refusal, force, "volumes prune")? {
            report.kept = due;
            return print(&report, format, true);
        }
    }
    let mut errors = Vec::new();
    for name in due {
        match rm_one(config, &name, true, live, false) {
            Ok(Some(bytes)) => {
                report.bytes_freed += bytes;
                report.removed.push(Gone {
                    name,
                    bytes_freed: bytes,
                });
            }
            Ok(None) => report.kept.push(name),
            Err(e) => errors.push(e),
        }
    }
    print(&report, format, true)?;
    let last = errors.pop();
    for e in errors {
        log::error!("{e}");
    }
    last.map_or(Ok(()), Err)
}

fn print(report: &Report, format: Format, total: bool) -> Result<(), HookError> {
    if format == Format::Json {
        return super::to_json(report);
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for g in &report.removed {
        writeln!(out, "{}", g.name).map_err(super::write_err)?;
    }
    if total {
        writeln!(out, "Total reclaimed space: {}", human(report.bytes_freed))
            .map_err(super::write_err)?;
    }
    Ok(())
}

/// Remove one volume; `Ok(None)` when the operator said no. `ask`: rm's
/// question for a non-empty volume (prune asked once for all).
fn rm_one(
    config: &Config,
    name: &str,
    force: bool,
    live: &[Record],
    ask: bool,
) -> Result<Option<u64>, HookError> {
    managed_name(config, name, "rm")?;
    let subject = format!("volume {name}");
    let Some(v) = open_volume(config, name)? else {
        return Err(HookError::failed(subject, "no such volume")
            .hint("`oci-volume-hook volumes` lists them"));
    };
    let held = holders(live, &v.path, Some(v.id));
    if !held.is_empty() {
        let who: Vec<String> = held
            .iter()
            .map(|(id, ro)| format!("{id}{}", if *ro { " (read-only)" } else { "" }))
            .collect();
        return Err(HookError::failed(
            subject,
            format!(
                "in use by running container {}; nothing removed",
                printable(&who.join(", "))
            ),
        )
        .hint("stop the container first; --force does not override a running container"));
    }
    let real = crate::fd::real_path(v.fd.as_fd())
        .map_err(|e| HookError::failed(subject.clone(), format!("its real path: {e}")))?;
    let mut mounts: Vec<_> = walk::mounts_below(&real).into_iter().collect();
    if !mounts.is_empty() {
        mounts.sort();
        return Err(HookError::failed(
            subject,
            format!(
                "holds the mount point {}; refusing to remove it (nothing removed; the mount and what it shows stay untouched)",
                printable(&real.join(&mounts[0]).display().to_string())
            ),
        )
        .hint("unmount it first, then remove the volume"));
    }
    if ask && !is_empty(&v) {
        let question = format!("Remove volume {name} and everything in it?");
        if !super::confirm(&question, "is not empty", force, &subject)? {
            return Ok(None);
        }
    }
    let removed = walk::remove_contents(&v.fd, &real, walk::default_threads()).map_err(|e| {
        HookError::failed(
            subject.clone(),
            format!(
                "removing {}: {}",
                printable(&e.path.display().to_string()),
                e.source
            ),
        )
        .hint("fix the entry named and run `volumes rm` again")
    })?;
    if removed.left > 0 || removed.mounts_skipped > 0 {
        return Err(HookError::failed(
            subject,
            format!(
                "{} entries could not be removed ({} mount points appeared meanwhile); {} removed",
                removed.left, removed.mounts_skipped, removed.entries
            ),
        )
        .hint("stop what writes or mounts there, then run `volumes rm` again"));
    }
    let bytes = removed.bytes + remove_root(&v, name, &subject)?;
    log::info!(
        "volume {name}: removed {} ({} entries, {} freed)",
        v.path.display(),
        removed.entries + 1,
        human(bytes)
    );
    Ok(Some(bytes))
}

pub(super) fn is_empty(v: &OpenVolume) -> bool {
    let Ok(dup) = rustix::io::fcntl_dupfd_cloexec(&v.fd, 0) else {
        return false;
    };
    let Ok(mut d) = rustix::fs::Dir::new(dup) else {
        return false;
    };
    while let Some(Ok(e)) = d.read() {
        if e.file_name() != c"." && e.file_name() != c".." {
            return false;
        }
    }
    true
}

/// rmdir the emptied root, by name beneath volumes_root, only if the name
/// still is the directory that was emptied. Its blocks.
pub(super) fn remove_root(v: &OpenVolume, name: &str, subject: &str) -> Result<u64, HookError> {
    use rustix::fs::{statat, unlinkat, AtFlags};
    let c = cstr(name)?;
    let st = statat(&v.root, &c, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| HookError::failed(subject, format!("stat {}: {e}", v.path.display())))?;
    if (st.st_dev, st.st_ino) != v.id {
        return Err(HookError::failed(
            subject,
            format!(
                "{} was replaced while it was being emptied; not removed",
                v.path.display()
            ),
        ));
    }
    unlinkat(&v.root, &c, AtFlags::REMOVEDIR)
        .map_err(|e| HookError::failed(subject, format!("rmdir {}: {e}", v.path.display())))?;
    Ok(st.st_blocks as u64 * 512)
}
