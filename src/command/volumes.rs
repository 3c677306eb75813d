//! `volumes` and `volumes inspect NAME`: every named and auto-created
//! volume, where it lives, its owner and label, and which running
//! containers use it.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::cli::Format;
use crate::config::{Access, Backend, Config};
use crate::error::{printable, HookError};
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

fn human(bytes: u64) -> String {
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
