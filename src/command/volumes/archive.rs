//! `volumes export NAME [-o FILE] [--live]` and `volumes import NAME
//! [FILE|-] [--preserve-special]` (podman: `podman volume export`,
//! `podman volume import`): the tar engine is `apply::archive`.
//!
//! - export refuses a volume a running container may write to (the copy
//!   could be torn) unless `--live`; it never writes a tar stream to a
//!   terminal. The claims lock is held for the check only.
//! - import fills a new or empty volume (it creates a missing one as
//!   `volumes create` does) that no running container holds. On any
//!   refusal or failure what it made is removed again with the walker (and
//!   the volume too when import created it): nothing is left half-imported,
//!   and nothing outside the volume was ever touched.

use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::Path;

use serde::Serialize;

use super::remove::{is_empty, remove_root};
use super::{holders, live_records, managed_name, open_volume, printable};
use crate::apply::archive::{self, ArchiveError, ImportOptions};
use crate::apply::{source, walk};
use crate::cli::Format;
use crate::config::Config;
use crate::error::HookError;
use crate::plan::{NewDir, SourceStep, NEW_VOLUME_MODE};

#[derive(Debug, Serialize)]
struct Exported {
    name: String,
    file: String,
    entries: u64,
    bytes: u64,
    skipped: u64,
}

#[derive(Debug, Serialize)]
struct Imported {
    name: String,
    created: bool,
    entries: u64,
    bytes: u64,
}

pub fn export(
    config: &Config,
    name: &str,
    output: Option<&Path>,
    live: bool,
    format: Format,
) -> Result<(), HookError> {
    managed_name(config, name, "export")?;
    let subject = format!("volume {name}");
    let v = open_volume(config, name)?.ok_or_else(|| {
        HookError::failed(subject.clone(), "no such volume")
            .hint("`oci-volume-hook volumes` lists them")
    })?;
    {
        let held = live_records(config)?;
        let writers: Vec<String> = holders(&held.records, &v.path, Some(v.id))
            .into_iter()
            .filter(|(_, ro)| !ro)
            .map(|(id, _)| id)
            .collect();
        if !writers.is_empty() && !live {
            return Err(HookError::failed(
                subject,
                format!(
                    "running container {} may write to it; the copy could be torn",
                    printable(&writers.join(", "))
                ),
            )
            .hint("stop the container first, or pass --live to export anyway"));
        }
    }
    let fail = |e: ArchiveError| HookError::failed(subject.clone(), format!("export: {e}"));
    let stats = match output {
        None => {
            if std::io::stdout().is_terminal() {
                return Err(HookError::invalid(
                    subject,
                    "refusing to write a tar stream to a terminal",
                )
                .hint("give -o FILE, or redirect stdout"));
            }
            let (mut out, stats) =
                archive::export(&v.fd, BufWriter::new(std::io::stdout().lock())).map_err(fail)?;
            out.flush()
                .map_err(|e| HookError::failed(subject.clone(), format!("writing: {e}")))?;
            stats
        }
        Some(p) => {
            use std::os::unix::fs::OpenOptionsExt;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(p)
                .map_err(|e| {
                    HookError::failed(subject.clone(), format!("open {}: {e}", p.display()))
                })?;
            let (out, stats) = archive::export(&v.fd, BufWriter::new(file)).map_err(fail)?;
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .map_err(|e| {
                    HookError::failed(subject.clone(), format!("writing {}: {e}", p.display()))
                })?;
            stats
        }
    };
    log::info!(
        "volume {name}: exported {} entries, {} of file data{}",
        stats.entries,
        super::human(stats.bytes),
        if stats.skipped > 0 {
            format!("; {} mount points or sockets left out", stats.skipped)
        } else {
            String::new()
        }
    );
    // On stdout the tar stream is the report.
    let Some(p) = output else {
        return Ok(());
    };
    let report = Exported {
        name: name.to_string(),
        file: p.display().to_string(),
        entries: stats.entries,
        bytes: stats.bytes,
        skipped: stats.skipped,
    };
    if format == Format::Json {
        return super::to_json(&report);
    }
    println!(
        "exported {name} to {}: {} entries, {}",
        printable(&report.file),
        stats.entries,
        super::human(stats.bytes)
    );
    Ok(())
}

pub fn import(
    config: &Config,
    name: &str,
    file: Option<&Path>,
    preserve_special: bool,
    format: Format,
) -> Result<(), HookError> {
    managed_name(config, name, "import")?;
    let subject = format!("volume {name}");
    let input: Box<dyn Read> = match file {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p == Path::new("-") => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::fs::File::open(p).map_err(|e| {
            HookError::failed(subject.clone(), format!("open {}: {e}", p.display()))
        })?),
    };
    let (v, created) = {
        let held = live_records(config)?;
        let (v, created) = match open_volume(config, name)? {
            Some(v) => (v, false),
            None => {
                let step = SourceStep::Managed {
                    root: config.volumes_root.clone(),
                    name: name.to_string(),
                    create: Some(NewDir {
                        uid: 0,
                        gid: 0,
                        mode: NEW_VOLUME_MODE,
                    }),
                };
                let made = source::create(&step, config.owners)
                    .map_err(|e| e.into_hook(subject.clone()))?;
                let v = open_volume(config, name)?.ok_or_else(|| {
                    HookError::failed(subject.clone(), "vanished right after its creation")
                })?;
                (v, made.created)
            }
        };
        let who = holders(&held.records, &v.path, Some(v.id));
        if !who.is_empty() {
            let ids: Vec<String> = who.into_iter().map(|(id, _)| id).collect();
            return Err(HookError::failed(
                subject,
                format!(
                    "in use by running container {}; nothing imported",
                    printable(&ids.join(", "))
                ),
            )
            .hint("stop the container first"));
        }
        (v, created)
    };
    if !created && !is_empty(&v) {
        return Err(HookError::failed(subject, "is not empty; nothing imported").hint(format!(
            "import fills only a new or empty volume: `oci-volume-hook volumes rm {name}` first, or import under another name"
        )));
    }
    let opts = ImportOptions { preserve_special };
    let stats = match archive::import(&v.fd, BufReader::new(input), opts) {
        Ok(s) => s,
        Err(e) => {
            // Undo: the volume was empty (or new) before.
            let real =
                crate::fd::real_path(std::os::fd::AsFd::as_fd(&v.fd)).unwrap_or(v.path.clone());
            let undone = walk::remove_contents(&v.fd, &real, walk::default_threads())
                .map_err(|e| e.to_string())
                .and_then(|r| {
                    if created {
                        remove_root(&v, name, &subject).map_err(|e| e.to_string())?;
                    }
                    Ok(r)
                });
            let tail = match undone {
                Ok(_) if created => "nothing imported; the volume it created was removed again",
                Ok(_) => "nothing imported; the volume was emptied again",
                Err(_) => "the partial import could not be removed: check the volume",
            };
            let err = if e.refused {
                HookError::invalid(subject, format!("import refused: {e}; {tail}"))
            } else {
                HookError::failed(subject, format!("import: {e}; {tail}"))
            };
            return Err(err.hint(if e.refused && !preserve_special {
                "only regular files, directories, symlinks, hard links and FIFOs inside the volume are imported; --preserve-special allows device nodes and setuid/setgid files"
            } else {
                "check the archive"
            }));
        }
    };
    log::info!(
        "volume {name}: imported {} entries, {} of file data",
        stats.entries,
        super::human(stats.bytes)
    );
    let report = Imported {
        name: name.to_string(),
        created,
        entries: stats.entries,
        bytes: stats.bytes,
    };
    if format == Format::Json {
        return super::to_json(&report);
    }
    println!(
        "imported {} entries ({}) into {name}",
        stats.entries,
        super::human(stats.bytes)
    );
    Ok(())
}
