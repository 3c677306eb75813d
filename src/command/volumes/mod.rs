//! `volumes` and its verbs: list every named and auto-created volume
//! (where it lives, its owner and label, which running containers use it)
//! and `inspect` one; the lifecycle of managed volumes: `create`
//! ([`create`]), `rm` and `prune` ([`remove`]), `export` and `import`
//! ([`archive`]). Argument parsing is pure, in [`parse`].

mod archive;
mod create;
mod parse;
mod remove;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::cli::{Format, VolumesCommand};
use crate::config::{Access, Backend, Config};
use crate::error::{printable, HookError};
use crate::hardening::CapProfile;
use crate::record::{Record, StateDir};

#[derive(Debug, Serialize)]
pub struct VolumeInfo {
    pub name: String,
    /// managed | bind | nfs
    pub backend: &'static str,
    pub path: String,
    pub exists: bool,
    pub owner: Option<String>,
    pub mode: Option<String>,
    pub label: Option<String>,
    pub access: Access,
    /// Bytes on disk, with `--size`.
    pub size_bytes: Option<u64>,
    /// Managed volumes: the last attach and detach (seconds since the
    /// epoch) and the starts recorded (see `record::usage`).
    pub last_attach: Option<u64>,
    pub last_detach: Option<u64>,
    pub starts: Option<u64>,
    pub containers: Vec<Use>,
}

#[derive(Debug, Serialize)]
pub struct Use {
    pub id: String,
    pub dest: PathBuf,
    pub read_only: bool,
    pub pid: Option<i32>,
    pub since: u64,
}

/// `volumes [VERB]`: each verb with the capabilities it needs.
pub fn run(
    config: &Config,
    command: Option<VolumesCommand>,
    format: Format,
    size: bool,
) -> Result<(), HookError> {
    use VolumesCommand as C;
    // Creating, removing and filling volumes: owners, modes, trusted.*
    // xattrs (CAP_SYS_ADMIN), others' files (DAC_*, FOWNER), as prestart.
    let profile = match &command {
        None | Some(C::Inspect { .. }) | Some(C::Export { .. }) => Some(CapProfile::Inspect),
        // Device nodes need CAP_MKNOD, which no profile keeps.
        Some(C::Import {
            preserve_special: true,
            ..
        }) => None,
        Some(_) => Some(CapProfile::Attach),
    };
    if let Some(p) = profile {
        super::drop_caps(p)?;
    }
    match command {
        None => list(config, format, size),
        Some(C::Inspect { name }) => inspect(config, &name, format, size),
        Some(C::Create {
            name,
            owner,
            label,
            mode,
        }) => create::run(
            config,
            &name,
            owner.as_deref(),
            label.as_deref(),
            mode.as_deref(),
            format,
        ),
        Some(C::Rm { names, force }) => remove::rm(config, &names, force, format),
        Some(C::Prune { force, filter }) => remove::prune(config, force, filter.as_deref(), format),
        Some(C::Export { name, output, live }) => {
            archive::export(config, &name, output.as_deref(), live, format)
        }
        Some(C::Import {
            name,
            file,
            preserve_special,
        }) => archive::import(config, &name, file.as_deref(), preserve_special, format),
    }
}

pub fn list(config: &Config, format: Format, size: bool) -> Result<(), HookError> {
    let vols = collect(config, size);
    print_list(&vols, format).map_err(|e| HookError::failed("volumes", format!("writing: {e}")))
}

pub fn inspect(config: &Config, name: &str, format: Format, size: bool) -> Result<(), HookError> {
    let Some(v) = collect(config, size).into_iter().find(|v| v.name == name) else {
        return Err(
            HookError::failed(format!("volume {name}"), "no such volume").hint(
                "`oci-volume-hook volumes` lists them; managed volumes appear after first use",
            ),
        );
    };
    let mut out = std::io::stdout().lock();
    let r = if format == Format::Json {
        serde_json::to_writer_pretty(&mut out, &v)
            .map_err(std::io::Error::other)
            .and_then(|_| writeln!(out))
    } else {
        print_one(&mut out, &v)
    };
    r.map_err(|e| HookError::failed("volumes", format!("writing: {e}")))
}

fn collect(config: &Config, size: bool) -> Vec<VolumeInfo> {
    let live: Vec<Record> = match StateDir::open(&config.state_dir, false) {
        Ok(Some(sd)) => sd
            .ids()
            .iter()
            .filter_map(|id| sd.read(id).ok().flatten())
            .filter(Record::holder_alive)
            .collect(),
        _ => Vec::new(),
    };
    let mut vols: BTreeMap<String, VolumeInfo> = BTreeMap::new();
    for (name, v) in &config.volumes {
        let (backend, path) = match v.backend() {
            Backend::Path(p) => ("bind", p.display().to_string()),
            Backend::Nfs(n) => (
                "nfs",
                match &v.subdir {
                    Some(s) => format!("{}/{}", n.trim_end_matches('/'), s.display()),
                    None => n.to_string(),
                },
            ),
            Backend::Managed => (
                "managed",
                config.volumes_root.join(name).display().to_string(),
            ),
        };
        vols.insert(name.clone(), info(name, backend, path, v.access));
    }
    if let Ok(rd) = std::fs::read_dir(&config.volumes_root) {
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if crate::input::annotations::validate_name(&name).is_err() || vols.contains_key(&name)
            {
                continue;
            }
            let path = config.volumes_root.join(&name).display().to_string();
            vols.insert(name.clone(), info(&name, "managed", path, Access::Shared));
        }
    }
    for v in vols.values_mut() {
        if v.backend != "nfs" {
            describe_path(v, size);
        }
        for r in &live {
            for rv in r.volumes.iter().filter(|rv| {
                rv.name.as_deref() == Some(v.name.as_str()) || rv.source == Path::new(&v.path)
            }) {
                v.containers.push(Use {
                    id: r.id.clone(),
                    dest: rv.dest.clone(),
                    read_only: rv.read_only,
                    pid: r.pid,
                    since: r.attached_at,
                });
            }
        }
    }
    vols.into_values().collect()
}

fn info(name: &str, backend: &'static str, path: String, access: Access) -> VolumeInfo {
    VolumeInfo {
        name: name.to_string(),
        backend,
        path,
        exists: false,
        owner: None,
        mode: None,
        label: None,
        access,
        size_bytes: None,
        last_attach: None,
        last_detach: None,
        starts: None,
        containers: Vec::new(),
    }
}

fn describe_path(v: &mut VolumeInfo, size: bool) {
    let Ok(meta) = std::fs::symlink_metadata(&v.path) else {
        return;
    };
    v.exists = true;
    v.owner = Some(format!("{}:{}", meta.uid(), meta.gid()));
    v.mode = Some(format!("{:04o}", meta.mode() & 0o7777));
    let mut buf = [0u8; 1024];
    v.label = rustix::fs::lgetxattr(v.path.as_str(), "security.selinux", &mut buf[..])
        .ok()
        .map(|n| {
            String::from_utf8_lossy(&buf[..n])
                .trim_end_matches('\0')
                .to_string()
        });
    if size && meta.is_dir() {
        v.size_bytes = disk_usage(Path::new(&v.path));
    }
    if v.backend == "managed" && meta.is_dir() {
        let usage = rustix::fs::open(
            v.path.as_str(),
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()
        .and_then(|fd| crate::record::usage::read(std::os::fd::AsFd::as_fd(&fd)))
        .unwrap_or_default();
        v.last_attach = usage.last_attach;
        v.last_detach = usage.last_detach;
        v.starts = Some(usage.starts);
    }
}

/// Bytes allocated below `path` (like `du -s -B1`), with the volume walker.
fn disk_usage(path: &Path) -> Option<u64> {
    struct Sum(AtomicU64);
    impl crate::apply::walk::Visitor for Sum {
        fn visit(&self, e: &crate::apply::walk::Entry<'_>) -> std::io::Result<()> {
            let st = rustix::fs::statat(e.dir, e.name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
            self.0
                .fetch_add(st.st_blocks as u64 * 512, Ordering::Relaxed);
            Ok(())
        }
    }
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let root_blocks = rustix::fs::fstat(&fd).ok()?.st_blocks as u64 * 512;
    let sum = Sum(AtomicU64::new(root_blocks));
    crate::apply::walk::walk(&fd, path, crate::apply::walk::default_threads(), &sum).ok()?;
    Some(sum.0.into_inner())
}

fn print_list(vols: &[VolumeInfo], format: Format) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut out, vols)?;
        return writeln!(out);
    }
    writeln!(
        out,
        "{:<20} {:<8} {:<10} {:<10} {:<10} {:<12} PATH",
        "NAME", "BACKEND", "ACCESS", "OWNER", "SIZE", "CONTAINERS"
    )?;
    for v in vols {
        let containers: Vec<String> = v
            .containers
            .iter()
            .map(|c| crate::error::short_id(&c.id).to_string())
            .collect();
        writeln!(
            out,
            "{:<20} {:<8} {:<10} {:<10} {:<10} {:<12} {}",
            v.name,
            v.backend,
            v.access.as_str(),
            v.owner.as_deref().unwrap_or("-"),
            v.size_bytes.map_or("-".into(), human),
            if containers.is_empty() {
                "-".into()
            } else {
                printable(&containers.join(",")).into_owned()
            },
            printable(&v.path)
        )?;
    }
    Ok(())
}

fn print_one(out: &mut impl Write, v: &VolumeInfo) -> std::io::Result<()> {
    writeln!(out, "name:       {}", v.name)?;
    writeln!(out, "backend:    {}", v.backend)?;
    writeln!(
        out,
        "path:       {}{}",
        printable(&v.path),
        if v.exists || v.backend == "nfs" {
            ""
        } else {
            " (not created yet)"
        }
    )?;
    writeln!(out, "access:     {}", v.access.as_str())?;
    for (k, val) in [("owner", &v.owner), ("mode", &v.mode), ("label", &v.label)] {
        if let Some(val) = val {
            writeln!(out, "{:<12}{}", format!("{k}:"), printable(val))?;
        }
    }
    if let Some(s) = v.size_bytes {
        writeln!(out, "size:       {} ({s} bytes)", human(s))?;
    }
    if let Some(starts) = v.starts {
        writeln!(out, "starts:     {starts}")?;
        writeln!(out, "attached:   {}", when(v.last_attach))?;
        writeln!(out, "detached:   {}", when(v.last_detach))?;
    }
    if v.containers.is_empty() {
        writeln!(out, "containers: none running")?;
    }
    for c in &v.containers {
        writeln!(
            out,
            "container:  {} on {} ({}), pid {}, since {}",
            printable(crate::error::short_id(&c.id)),
            printable(&c.dest.display().to_string()),
            if c.read_only { "ro" } else { "rw" },
            c.pid.map_or("?".into(), |p| p.to_string()),
            c.since
        )?;
    }
    Ok(())
}

pub(super) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// A time in seconds since the epoch, for reports: UTC, ISO 8601.
fn when(t: Option<u64>) -> String {
    let Some(t) = t else {
        return "never recorded".into();
    };
    let (days, secs) = (t / 86_400, t % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

// ------------------------------------------------ shared by the verbs ---

/// Refuse a name the annotation grammar would refuse, and the volumes the
/// hook does not manage: admin-defined `path` and NFS volumes.
pub(super) fn managed_name(config: &Config, name: &str, verb: &str) -> Result<(), HookError> {
    crate::input::annotations::validate_name(name)
        .map_err(|why| HookError::invalid(format!("volume {}", printable(name)), why))?;
    let Some(v) = config.volumes.get(name) else {
        return Ok(());
    };
    let subject = format!("volume {name}");
    match v.backend() {
        Backend::Managed => Ok(()),
        Backend::Path(p) => Err(HookError::invalid(
            subject,
            format!(
                "is the admin-defined volume [volumes.{name}] path = {} in {}; `volumes {verb}` acts only on managed volumes in volumes_root",
                p.display(),
                config.origin
            ),
        )
        .hint(format!(
            "manage {} on the host yourself (and edit [volumes.{name}] in the config)",
            p.display()
        ))),
        Backend::Nfs(n) => Err(HookError::invalid(
            subject,
            format!(
                "is the admin-defined NFS volume [volumes.{name}] nfs = {n} in {}; `volumes {verb}` acts only on managed volumes in volumes_root",
                config.origin
            ),
        )
        .hint("manage the export on the NFS server (and edit the config)")),
    }
}

/// A managed volume, opened: `volumes_root` (checked as prestart checks
/// it) and the volume's root directory beneath it, never through a symlink
/// and never on another mount.
pub(super) struct OpenVolume {
    pub root: OwnedFd,
    pub fd: OwnedFd,
    pub path: PathBuf,
    pub id: (u64, u64),
}

/// Open the managed volume `name`; `Ok(None)` when it does not exist.
pub(super) fn open_volume(config: &Config, name: &str) -> Result<Option<OpenVolume>, HookError> {
    let subject = format!("volume {name}");
    let path = config.volumes_root.join(name);
    let Some(root) =
        crate::apply::source::open_checked_volumes_root(&config.volumes_root, config.owners)
            .map_err(|e| e.into_hook(subject.clone()))?
    else {
        return Ok(None);
    };
    let fd = match crate::fd::open_dir_beneath(root.as_fd(), &cstr(name)?) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::XDEV) => {
            return Err(HookError::failed(
                subject,
                format!("{} is a mount point; refusing to touch it", path.display()),
            )
            .hint("unmount it first"))
        }
        Err(e @ (rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR)) => {
            return Err(HookError::failed(
                subject,
                format!(
                    "{} is a symlink or not a directory ({e}); refusing to use it as a volume",
                    path.display()
                ),
            )
            .hint("an admin must remove or fix it"))
        }
        Err(e) => {
            return Err(HookError::failed(
                subject,
                format!("open {}: {e}", path.display()),
            ))
        }
    };
    let st = rustix::fs::fstat(&fd)
        .map_err(|e| HookError::failed(subject, format!("fstat {}: {e}", path.display())))?;
    Ok(Some(OpenVolume {
        root,
        fd,
        path,
        id: (st.st_dev, st.st_ino),
    }))
}

pub(super) fn cstr(name: &str) -> Result<std::ffi::CString, HookError> {
    std::ffi::CString::new(name)
        .map_err(|_| HookError::invalid(format!("volume {}", printable(name)), "NUL in the name"))
}

/// The live containers holding the volume at `path` (or with root `id`):
/// (short id, read-only) for each, from the same live-record check as
/// claims (stale records do not count).
pub(super) fn holders(live: &[Record], path: &Path, id: Option<(u64, u64)>) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for r in live {
        for v in &r.volumes {
            let same = v.source == path || (id.is_some() && v.id == id);
            if same {
                out.push((crate::error::short_id(&r.id).to_string(), v.read_only));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The claims lock, held while it lives, and the live records under it
/// (none when the state dir does not exist: no container ever started).
pub(super) struct Live {
    _records: Option<StateDir>,
    _lock: Option<OwnedFd>,
    pub records: Vec<Record>,
}

pub(super) fn live_records(config: &Config) -> Result<Live, HookError> {
    match StateDir::open(&config.state_dir, false)? {
        None => Ok(Live {
            _records: None,
            _lock: None,
            records: Vec::new(),
        }),
        Some(sd) => {
            let lock = sd.lock()?;
            let records = sd.live_records();
            Ok(Live {
                _records: Some(sd),
                _lock: Some(lock),
                records,
            })
        }
    }
}

/// Ask on the terminal; `--force` skips the question; without a terminal
/// and without `--force`, refuse (as `podman volume prune`).
pub(super) fn confirm(
    question: &str,
    refusal: &str,
    force: bool,
    subject: &str,
) -> Result<bool, HookError> {
    use std::io::{BufRead, IsTerminal};
    if force {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(HookError::invalid(
            subject,
            format!("{refusal}, and there is no terminal to ask on"),
        )
        .hint("pass --force to go ahead without a question"));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| HookError::failed(subject, format!("reading the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

pub(super) fn write_err(e: std::io::Error) -> HookError {
    HookError::failed("volumes", format!("writing: {e}"))
}

pub(super) fn to_json(v: &impl Serialize) -> Result<(), HookError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)
        .map_err(std::io::Error::other)
        .and_then(|_| writeln!(out))
        .map_err(write_err)
}
