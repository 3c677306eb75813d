//! NFS volumes: an export mounted by the hook itself with the kernel's mount
//! API (fsopen/fsconfig/fsmount, never /bin/mount), in the host's mount and
//! network namespaces, as a detached mount that `stage::prestart` attaches in
//! the container like any other volume.
//!
//! - Options: the admin's `options` are checked strictly at config load
//!   ([`NfsOptions::parse`]): known keys only, values checked, and the keys the
//!   hook sets itself (`addr`, `clientaddr`, `context`) refused by name.
//!   Annotations carry no NFS options.
//! - Address: the kernel does no DNS, so the hook resolves the server
//!   ([`resolve`]) and passes `addr=`; for NFS 4.0 also `clientaddr=`, the
//!   local address this host uses to reach the server.
//! - Labels: NFS stores no per-file labels, so z/Z become `context=` (the
//!   container's file label from label::target_context, level s0 for z). A mount refused because the
//!   same export is already mounted with another context is retried once
//!   with `nosharecache`.
//! - Time: the blocking part (creating the superblock, the sub-directory)
//!   runs in a forked child that hands the mount back over a socket
//!   (SCM_RIGHTS); past `mount_timeout` the child is killed and the volume
//!   fails. A forked child, not a thread: a thread stuck in the kernel would
//!   make the later `setns(CLONE_NEWNS)` fail.
//! - Sub-directories: created in the child beneath the mounted export with
//!   openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV), owned by
//!   the container's user; the container gets a clone of exactly that
//!   directory (open_tree), so nothing outside the export can be reached.
//! - Ownership (`U`) and `idmap`: refused. NFS cannot be idmapped, and files
//!   on NFS belong to whoever the server says.

use std::ffi::CString;
use std::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{fchmod, fchown, mkdirat, openat, unlinkat, AtFlags, Gid, Mode, OFlags, Uid, CWD};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    open_tree, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};
use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::process::{kill_process, waitpid, Signal, WaitOptions};

use crate::bundle::Bundle;
use crate::error::{quote, HookError};
use crate::plan::NewDir;
use crate::sys;

/// The NFS port, used when neither the URL nor `port=` names one.
pub const NFS_PORT: u16 = 2049;

/// Protocol version. No negotiation: the kernel is asked for exactly this
/// one (`vers=4` means 4.0, as in the kernel; mount.nfs would negotiate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    V3,
    V4_0,
    #[default]
    V4_1,
    V4_2,
}

impl Version {
    fn parse(s: &str) -> Option<Version> {
        Some(match s {
            "3" => Version::V3,
            "4" | "4.0" => Version::V4_0,
            "4.1" => Version::V4_1,
            "4.2" => Version::V4_2,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V3 => "3",
            Version::V4_0 => "4.0",
            Version::V4_1 => "4.1",
            Version::V4_2 => "4.2",
        }
    }

    /// The file system type to `fsopen`.
    pub fn fs_type(self) -> &'static str {
        match self {
            Version::V3 => "nfs",
            _ => "nfs4",
        }
    }
}

/// Address family forced by `proto=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// The admin's NFS options, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NfsOptions {
    pub version: Version,
    /// Every other option, in the admin's order: `(key, Some(value))` or a flag.
    pub params: Vec<(String, Option<String>)>,
    /// The admin chose `sharecache` or `nosharecache` explicitly.
    pub sharecache_set: bool,
    pub family: Option<Family>,
}

enum Kind {
    Flag,
    Num(u64, u64),
    Choice(&'static [&'static str]),
}

/// Options the hook passes through, with their values' range.
const KNOWN: &[(&str, Kind)] = &[
    ("rsize", Kind::Num(1024, 1 << 20)),
    ("wsize", Kind::Num(1024, 1 << 20)),
    ("timeo", Kind::Num(1, 6000)),
    ("retrans", Kind::Num(0, 100)),
    ("port", Kind::Num(0, 65535)),
    ("mountport", Kind::Num(0, 65535)),
    ("nconnect", Kind::Num(1, 16)),
    ("actimeo", Kind::Num(0, 36000)),
    ("acregmin", Kind::Num(0, 36000)),
    ("acregmax", Kind::Num(0, 36000)),
    ("acdirmin", Kind::Num(0, 36000)),
    ("acdirmax", Kind::Num(0, 36000)),
    ("proto", Kind::Choice(&["tcp", "tcp6", "udp", "udp6"])),
    ("mountproto", Kind::Choice(&["tcp", "tcp6", "udp", "udp6"])),
    (
        "sec",
        Kind::Choice(&["sys", "krb5", "krb5i", "krb5p", "none"]),
    ),
    (
        "lookupcache",
        Kind::Choice(&["all", "none", "pos", "positive"]),
    ),
    (
        "local_lock",
        Kind::Choice(&["none", "all", "flock", "posix"]),
    ),
    ("hard", Kind::Flag),
    ("soft", Kind::Flag),
    ("softerr", Kind::Flag),
    ("ac", Kind::Flag),
    ("noac", Kind::Flag),
    ("cto", Kind::Flag),
    ("nocto", Kind::Flag),
    ("lock", Kind::Flag),
    ("nolock", Kind::Flag),
    ("resvport", Kind::Flag),
    ("noresvport", Kind::Flag),
    ("sharecache", Kind::Flag),
    ("nosharecache", Kind::Flag),
    ("rdirplus", Kind::Flag),
    ("nordirplus", Kind::Flag),
    ("acl", Kind::Flag),
    ("noacl", Kind::Flag),
    ("sync", Kind::Flag),
    ("async", Kind::Flag),
];

/// Pairs that contradict each other.
const PAIRS: &[(&str, &str)] = &[
    ("hard", "soft"),
    ("hard", "softerr"),
    ("soft", "softerr"),
    ("ac", "noac"),
    ("cto", "nocto"),
    ("lock", "nolock"),
    ("resvport", "noresvport"),
    ("sharecache", "nosharecache"),
    ("rdirplus", "nordirplus"),
    ("acl", "noacl"),
    ("sync", "async"),
];

/// Options refused by name, with the reason.
fn refused(key: &str) -> Option<&'static str> {
    Some(match key {
        "context" | "fscontext" | "defcontext" | "rootcontext" | "seclabel" => {
            "the hook sets context= itself from the container's label (z/Z, or selinux = \"shared\"|\"private\" in the volume's table)"
        }
        "addr" => "the hook resolves the server name itself and passes its address",
        "clientaddr" => "the hook passes the local address that reaches the server (NFS 4.0)",
        "mounthost" | "mountaddr" => "a separate mount server is not supported",
        "minorversion" => "use vers=4.0, 4.1 or 4.2",
        "ro" | "rw" | "nosuid" | "suid" | "nodev" | "dev" | "noexec" | "exec" | "defaults" => {
            "mount flags come from read_only = true in the volume's table and the annotation's options"
        }
        "bg" | "fg" | "retry" | "_netdev" | "nofail" | "auto" | "noauto" | "user" | "users"
        | "owner" | "comment" => {
            "a mount(8)/fstab option the kernel does not know; the hook's deadline is mount_timeout"
        }
        "intr" | "nointr" => "it has had no effect since Linux 2.6.25; remove it",
        "fsc" | "nofsc" => "FS-Cache is not supported by this build",
        _ => return None,
    })
}

impl NfsOptions {
    /// Parse the admin's `options` string (`vers=4.1,hard,timeo=600`).
    pub fn parse(s: &str) -> Result<NfsOptions, String> {
        let mut o = NfsOptions::default();
        let mut seen: Vec<&str> = Vec::new();
        let mut version = None;
        for item in s.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err("empty option in the NFS option list".into());
            }
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (item, None),
            };
            if let Some(v) = value {
                let ok = !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"\"'\\=".contains(&b));
                if !ok {
                    return Err(format!("NFS option {}: bad value", quote(item)));
                }
            }
            let key = if key == "nfsvers" { "vers" } else { key };
            if seen.contains(&key) {
                return Err(format!("NFS option {} is given twice", quote(key)));
            }
            seen.push(key);
            if let Some(why) = refused(key) {
                return Err(format!(
                    "NFS option {} is not allowed here: {why}",
                    quote(key)
                ));
            }
            if key == "vers" {
                let v = value.unwrap_or("");
                version = Some(Version::parse(v).ok_or_else(|| {
                    format!("NFS option vers={v}: use vers=3, 4 (= 4.0), 4.0, 4.1 or 4.2")
                })?);
                continue;
            }
            let Some((_, kind)) = KNOWN.iter().find(|(k, _)| *k == key) else {
                return Err(format!(
                    "unknown NFS option {} (known: vers, {})",
                    quote(key),
                    KNOWN.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ));
            };
            match (kind, value) {
                (Kind::Flag, None) => {}
                (Kind::Flag, Some(_)) => {
                    return Err(format!("NFS option {key} takes no value"));
                }
                (_, None) => return Err(format!("NFS option {key} needs a value")),
                (Kind::Num(lo, hi), Some(v)) => {
                    let n: u64 = v
                        .parse()
                        .map_err(|_| format!("NFS option {key}={v}: not a number"))?;
                    if !(*lo..=*hi).contains(&n) {
                        return Err(format!("NFS option {key}={v}: must be {lo} to {hi}"));
                    }
                }
                (Kind::Choice(choices), Some(v)) => {
                    if !choices.contains(&v) {
                        return Err(format!(
                            "NFS option {key}={v}: must be one of {}",
                            choices.join(", ")
                        ));
                    }
                }
            }
            if key == "proto" {
                o.family = Some(if value.is_some_and(|v| v.ends_with('6')) {
                    Family::V6
                } else {
                    Family::V4
                });
            }
            if key == "sharecache" || key == "nosharecache" {
                o.sharecache_set = true;
            }
            o.params.push((key.to_string(), value.map(str::to_string)));
        }
        for (a, b) in PAIRS {
            if seen.contains(a) && seen.contains(b) {
                return Err(format!("NFS options {a} and {b} contradict each other"));
            }
        }
        o.version = version.unwrap_or_default();
        let udp = o
            .params
            .iter()
            .any(|(k, v)| k == "proto" && v.as_deref().is_some_and(|v| v.starts_with("udp")));
        if udp && o.version != Version::V3 {
            return Err("NFS option proto=udp needs vers=3 (NFSv4 runs over TCP)".into());
        }
        Ok(o)
    }
}

/// `server:/export` (as in fstab; `[v6addr]:/export` for IPv6) split into the
/// host and the export path.
pub fn parse_server_export(s: &str) -> Result<(String, PathBuf), String> {
    let bad = || format!("nfs = {} must be \"server:/export\"", quote(s));
    let (host, export) = if let Some(rest) = s.strip_prefix('[') {
        let (h, e) = rest.split_once("]:").ok_or_else(bad)?;
        h.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (h, e)
    } else {
        s.split_once(':').ok_or_else(bad)?
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
                && !host.starts_with(['-', '.']));
    if !host_ok || !export.starts_with('/') {
        return Err(bad());
    }
    let mut path = PathBuf::from("/");
    for c in Path::new(export).components() {
        match c {
            Component::Normal(n) => path.push(n),
            Component::RootDir | Component::CurDir => {}
            _ => return Err(format!("nfs = {}: the export contains \"..\"", quote(s))),
        }
    }
    Ok((host.to_ascii_lowercase(), path))
}

/// An NFS volume the policy approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsVolume {
    /// Host name or address, as the admin (or the allowed URL) wrote it.
    pub host: String,
    /// From an `nfs://host:port/` URL.
    pub port: Option<u16>,
    pub export: PathBuf,
    /// Relative, no `..` (checked at config load).
    pub subdir: Option<PathBuf>,
    pub options: NfsOptions,
    /// Deadline for resolving and mounting, in seconds.
    pub timeout: u64,
    /// Where the deadline comes from, for messages.
    pub timeout_rule: String,
}

impl NfsVolume {
    /// `host:/export[/subdir]` for messages and records.
    pub fn display(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let mut p = self.export.clone();
        if let Some(s) = &self.subdir {
            p.push(s);
        }
        format!("{host}:{}", p.display())
    }
}

/// The NFS step of a plan: the volume plus what the container adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsStep {
    pub volume: NfsVolume,
    /// `context=` value (z/Z with SELinux on).
    pub context: Option<String>,
    /// Owner and mode of sub-directories created on first use.
    pub new_dir: NewDir,
}

/// Plan an NFS volume: refuse what NFS cannot do, compute the context.
pub fn plan_step(
    bundle: &Bundle,
    volume: &NfsVolume,
    options: &crate::annotations::Options,
    subject: &str,
) -> Result<NfsStep, HookError> {
    if options.idmap {
        return Err(HookError::failed(
            subject,
            format!("option idmap cannot be used on NFS volume {}: the kernel cannot idmap NFS mounts", volume.display()),
        )
        .hint("remove idmap; the server decides file ownership on NFS (e.g. all_squash,anonuid= in its exports)"));
    }
    if options.chown {
        return Err(HookError::failed(
            subject,
            format!("option U cannot be used on NFS volume {}: file ownership on NFS is the server's (root may be squashed), so the hook does not chown NFS files", volume.display()),
        )
        .hint("remove U; a sub-directory (subdir) is created owned by the container's user, or set the owner on the server"));
    }
    let context = match options.relabel {
        None => None,
        Some(mode) => crate::label::target_context(bundle, mode).map_err(|e| e.about(subject))?,
    };
    let (uid, gid) = bundle.host_owner()?;
    Ok(NfsStep {
        volume: volume.clone(),
        context,
        new_dir: NewDir {
            uid,
            gid,
            mode: crate::plan::NEW_VOLUME_MODE,
        },
    })
}

/// The value of an SELinux boolean (`/sys/fs/selinux/booleans/NAME`), if the
/// policy has it.
pub fn selinux_boolean(name: &str) -> Option<bool> {
    let s = std::fs::read_to_string(format!("/sys/fs/selinux/booleans/{name}")).ok()?;
    Some(s.trim_start().starts_with('1'))
}

/// A sentence about the policy booleans that let confined containers use
/// NFS files that carry the default `nfs_t` label.
pub fn boolean_note() -> String {
    let state = |b: &str| match selinux_boolean(b) {
        Some(true) => format!("{b} is on"),
        Some(false) => format!("{b} is off"),
        None => format!("{b} is not in this policy"),
    };
    format!(
        "without z/Z the files keep the label nfs_t, which confined containers may use only when the SELinux boolean container_use_nfs (virt_use_nfs in older policies) is on ({}, {}); add :z or :Z, or `setsebool -P container_use_nfs 1`",
        state("container_use_nfs"),
        state("virt_use_nfs")
    )
}

/// Resolve the server name to one address (the kernel needs `addr=`).
pub fn resolve(volume: &NfsVolume) -> Result<SocketAddr, HookError> {
    let port = volume.port.unwrap_or(NFS_PORT);
    let addrs = (volume.host.as_str(), port).to_socket_addrs().map_err(|e| {
        HookError::failed(
            "",
            format!(
                "NFS server name {} does not resolve: {e}",
                quote(&volume.host)
            ),
        )
        .hint("check the server name in the volume's nfs = (or the nfs:// source), DNS and /etc/hosts; the hook resolves it itself because the kernel does not")
    })?;
    let family_ok = |a: &SocketAddr| match volume.options.family {
        Some(Family::V4) => a.is_ipv4(),
        Some(Family::V6) => a.is_ipv6(),
        None => true,
    };
    let all: Vec<SocketAddr> = addrs.collect();
    all.iter().copied().find(family_ok).ok_or_else(|| {
        HookError::failed(
            "",
            format!(
                "NFS server name {} resolves to no {} address ({})",
                quote(&volume.host),
                if volume.options.family == Some(Family::V6) {
                    "IPv6"
                } else {
                    "IPv4"
                },
                all.iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .hint("proto=tcp means IPv4, proto=tcp6 IPv6")
    })
}

/// The local address this host's routing picks to reach `server` (a
/// connected UDP socket sends nothing).
pub fn client_addr(server: SocketAddr) -> std::io::Result<IpAddr> {
    let any: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let s = UdpSocket::bind(any)?;
    s.connect(server)?;
    Ok(s.local_addr()?.ip())
}

/// Every fsconfig parameter for a mount, in order; `source` first.
pub fn mount_params(
    step: &NfsStep,
    addr: IpAddr,
    client: Option<IpAddr>,
    nosharecache: bool,
) -> Vec<(String, Option<String>)> {
    let v = &step.volume;
    let host = if v.host.contains(':') {
        format!("[{}]", v.host)
    } else {
        v.host.clone()
    };
    let mut p: Vec<(String, Option<String>)> = vec![
        (
            "source".into(),
            Some(format!("{host}:{}", v.export.display())),
        ),
        ("vers".into(), Some(v.options.version.as_str().into())),
        ("addr".into(), Some(addr.to_string())),
    ];
    if let (Version::V4_0, Some(c)) = (v.options.version, client) {
        p.push(("clientaddr".into(), Some(c.to_string())));
    }
    if let Some(port) = v.port {
        if !v.options.params.iter().any(|(k, _)| k == "port") {
            p.push(("port".into(), Some(port.to_string())));
        }
    }
    p.extend(v.options.params.iter().cloned());
    if nosharecache {
        p.push(("nosharecache".into(), None));
    }
    if let Some(c) = &step.context {
        p.push(("context".into(), Some(c.clone())));
    }
    p
}

/// The parameters as a mount(8) option string (without `source`). A value
/// with a comma (an SELinux level with categories) is double-quoted, as the
/// mount(2) data string needs; fsconfig takes the raw value.
pub fn render(params: &[(String, Option<String>)]) -> String {
    params
        .iter()
        .filter(|(k, _)| k != "source")
        .map(|(k, v)| match v {
            None => k.clone(),
            Some(v) if v.contains(',') => format!("{k}=\"{v}\""),
            Some(v) => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What `check` shows: the mount the hook would make, without making it.
pub struct Described {
    pub server: String,
    pub mount: String,
    pub resolved: Result<SocketAddr, HookError>,
}

pub fn describe(step: &NfsStep) -> Described {
    let v = &step.volume;
    let resolved = resolve(v);
    let (addr, client) = match &resolved {
        Ok(a) => (a.ip(), client_addr(*a).ok()),
        Err(_) => ("0.0.0.0".parse().expect("literal"), None),
    };
    let params = mount_params(step, addr, client, false);
    let mut mount = format!(
        "{} {} -o {}",
        v.options.version.fs_type(),
        params[0].1.as_deref().unwrap_or(""),
        render(&params)
    );
    if let Some(s) = &v.subdir {
        mount.push_str(&format!(
            "; then sub-directory {} (created on first use, owner {}:{}, mode {:04o})",
            s.display(),
            step.new_dir.uid,
            step.new_dir.gid,
            step.new_dir.mode
        ));
    }
    mount.push_str(&format!("; deadline {} s ({})", v.timeout, v.timeout_rule));
    Described {
        server: match &resolved {
            Ok(a) => format!("{} resolves to {}", v.host, a.ip()),
            Err(e) => e.why.clone(),
        },
        mount,
        resolved,
    }
}

/// A mounted NFS volume, detached, ready for `mount::set_attrs` and attach.
pub struct Mounted {
    pub tree: OwnedFd,
    /// `host:/export[/subdir]`.
    pub display: String,
    pub addr: IpAddr,
    pub options: String,
    /// The sub-directory was created by this mount.
    pub created: bool,
}

/// Total time the hook gives all NFS mounts of one container: inside the
/// hooks.d `timeout` of 120 s, so that the hook, not the runtime, reports a
/// stuck server (with the server, the volume and the deadline named).
pub const BUDGET: Duration = Duration::from_secs(110);

/// Resolve, mount and (with subdir) open the sub-directory, all within the
/// volume's deadline, and never after `not_after` (the hook's [`BUDGET`]).
/// Runs in the host's mount and network namespaces.
pub fn mount(step: &NfsStep, not_after: Instant) -> Result<Mounted, HookError> {
    let v = &step.volume;
    let start = Instant::now();
    let own = start + Duration::from_secs(v.timeout);
    let deadline = own.min(not_after);
    let limit = Limit {
        secs: deadline.saturating_duration_since(start).as_secs_f64(),
        capped: deadline < own,
        start,
    };
    let server = resolve(v)?;
    let resolved_in = start.elapsed();
    let client = if v.options.version == Version::V4_0 {
        Some(client_addr(server).map_err(|e| {
            HookError::failed(
                "",
                format!(
                    "no route from this host to NFS server {} ({}): {e}",
                    v.host,
                    server.ip()
                ),
            )
        })?)
    } else {
        None
    };
    let subdir: Vec<CString> = match &v.subdir {
        None => Vec::new(),
        Some(s) => s
            .components()
            .map(|c| CString::new(c.as_os_str().as_encoded_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| HookError::failed("", "subdir contains a NUL byte"))?,
    };
    let mut nosharecache = false;
    loop {
        let params = mount_params(step, server.ip(), client, nosharecache);
        let options = render(&params);
        let fs = Fs {
            fs_type: v.options.version.fs_type(),
            params: &params,
        };
        match run_mount(&fs, &subdir, step.new_dir, deadline) {
            Ok((tree, created)) => {
                log::debug!(
                    "mounted {} ({}) in {} ms",
                    v.display(),
                    options,
                    start.elapsed().as_millis()
                );
                return Ok(Mounted {
                    tree,
                    display: v.display(),
                    addr: server.ip(),
                    options,
                    created,
                });
            }
            // The same export mounted with another context on a kernel that
            // refuses to share the superblock: once more, with our own.
            Err(MountError::Failed {
                stage: Stage::Create,
                errno,
                ..
            }) if (errno == Errno::BUSY || errno == Errno::INVAL)
                && step.context.is_some()
                && !nosharecache
                && !v.options.sharecache_set
                && Instant::now() < deadline =>
            {
                log::info!(
                    "{}: mount with context= refused ({errno}); retrying with nosharecache",
                    v.display()
                );
                nosharecache = true;
            }
            Err(e) => return Err(explain(step, server, &options, &limit, resolved_in, e)),
        }
    }
}

/// Turn a failed mount into a message naming the server, the export, the
/// option string and what to do.
/// The deadline a mount ran under, for messages.
struct Limit {
    secs: f64,
    capped: bool,
    start: Instant,
}

fn explain(
    step: &NfsStep,
    server: SocketAddr,
    options: &str,
    limit: &Limit,
    resolved_in: Duration,
    e: MountError,
) -> HookError {
    let v = &step.volume;
    let at = format!(
        "NFS mount of {} from server {} ({})",
        v.display(),
        v.host,
        server
    );
    match e {
        MountError::TimedOut => HookError::failed(
            "",
            format!(
                "{at} did not complete within the deadline of {} s ({}{}{}); the mount was abandoned after {:.1} s and the container not started",
                format_secs(limit.secs),
                v.timeout_rule,
                if limit.capped {
                    format!(", capped by the hook's budget of {} s for all NFS mounts of a container, inside the hooks.d timeout of 120 s", BUDGET.as_secs())
                } else {
                    String::new()
                },
                if resolved_in >= Duration::from_millis(500) {
                    format!("; resolving the name took {:.1} s of it", resolved_in.as_secs_f64())
                } else {
                    String::new()
                },
                limit.start.elapsed().as_secs_f64()
            ),
        )
        .hint(format!(
            "check that the server is up and reachable from this host on port {}, or raise mount_timeout",
            v.port.unwrap_or(NFS_PORT)
        )),
        MountError::Setup(what, err) => HookError::failed("", format!("{at}: {what}: {err}")),
        MountError::Failed { stage, errno, log } => {
            let log = if log.is_empty() {
                String::new()
            } else {
                format!(" [kernel: {}]", log.join("; "))
            };
            let hint = match (stage, errno) {
                (Stage::Create, Errno::NOENT) => "the export path does not exist on the server (wrong or stale export): check nfs = and the server's exports".to_string(),
                (Stage::Create, Errno::ACCESS | Errno::PERM) => format!(
                    "the server refused this host ({}), or SELinux denied the mount{}: check the server's exports; `ausearch -m avc -ts recent` shows SELinux denials. {}",
                    client_addr(server).map(|a| a.to_string()).unwrap_or_else(|_| "?".into()),
                    if step.context.is_some() { " with context=" } else { "" },
                    boolean_note()
                ),
                (Stage::Create, Errno::STALE) => "stale file handle: the export was removed or re-created on the server".into(),
                (Stage::Create, Errno::PROTONOSUPPORT | Errno::PROTO | Errno::NOTSUP) => format!(
                    "the server does not offer NFS {}: set vers= in the volume's options",
                    v.options.version.as_str()
                ),
                (Stage::Create, Errno::CONNREFUSED | Errno::HOSTUNREACH | Errno::NETUNREACH | Errno::TIMEDOUT | Errno::CONNRESET) =>
                    format!("the server is not reachable from this host on port {}", v.port.unwrap_or(NFS_PORT)),
                (Stage::Create, Errno::INVAL) => format!("the kernel refused the options {options}"),
                (Stage::Open, Errno::LOOP | Errno::XDEV | Errno::NOTDIR) =>
                    "the sub-directory is a symlink, not a directory, or another file system on the export: refused (volumes never leave the export)".into(),
                (Stage::Mkdir | Stage::Owner, Errno::ACCESS | Errno::PERM) =>
                    "the server does not let root create or chown it (root_squash?): create the sub-directory on the server with the container's owner".into(),
                (Stage::Open | Stage::Mkdir, Errno::NOENT) => "the sub-directory was removed while the hook ran; start again".into(),
                _ => format!("options {options}"),
            };
            HookError::failed("", format!("{at}: {}: {errno}{log}", stage.what()))
                .hint(hint)
        }
    }
}

fn format_secs(s: f64) -> String {
    if (s - s.round()).abs() < 0.05 {
        format!("{}", s.round() as u64)
    } else {
        format!("{s:.1}")
    }
}

// ------------------------------------------------------------ the mount child --

/// What the child was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    Create = 1,
    Fsmount = 2,
    Unshare = 3,
    Private = 4,
    Attach = 5,
    Mkdir = 6,
    Open = 7,
    Owner = 8,
    Clone = 9,
}

impl Stage {
    fn from_u8(b: u8) -> Option<Stage> {
        Some(match b {
            1 => Stage::Create,
            2 => Stage::Fsmount,
            3 => Stage::Unshare,
            4 => Stage::Private,
            5 => Stage::Attach,
            6 => Stage::Mkdir,
            7 => Stage::Open,
            8 => Stage::Owner,
            9 => Stage::Clone,
            _ => return None,
        })
    }

    fn what(self) -> &'static str {
        match self {
            Stage::Create => "fsconfig(FSCONFIG_CMD_CREATE)",
            Stage::Fsmount => "fsmount",
            Stage::Unshare => "unshare(CLONE_NEWNS) for the sub-directory",
            Stage::Private => "making the helper's mounts private",
            Stage::Attach => "move_mount of the export in the helper",
            Stage::Mkdir => "creating the sub-directory",
            Stage::Open => "opening the sub-directory beneath the export",
            Stage::Owner => "setting the owner and mode of the new sub-directory",
            Stage::Clone => "open_tree of the sub-directory",
        }
    }
}

/// A file system to create: its type and fsconfig parameters.
pub struct Fs<'a> {
    pub fs_type: &'a str,
    pub params: &'a [(String, Option<String>)],
}

#[derive(Debug)]
pub enum MountError {
    /// Before the child: fsopen or a parameter (synchronous, with the log).
    Setup(String, String),
    /// In the child, at `stage`, with the file system context's log.
    Failed {
        stage: Stage,
        errno: Errno,
        log: Vec<String>,
    },
    TimedOut,
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::Setup(w, e) => write!(f, "{w}: {e}"),
            MountError::Failed { stage, errno, log } => {
                write!(f, "{}: {errno} {}", stage.what(), log.join("; "))
            }
            MountError::TimedOut => write!(f, "timed out"),
        }
    }
}

/// The messages the kernel left in a file system context (`e nfs: …`).
fn fs_log(fsfd: BorrowedFd<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while out.len() < 8 {
        match rustix::io::read(fsfd, &mut buf) {
            Ok(n) if n > 0 => out.push(String::from_utf8_lossy(&buf[..n]).trim().to_string()),
            _ => break,
        }
    }
    out
}

/// Create the file system (and the sub-directory) in a forked child, within
/// `deadline`; return the detached mount and whether a directory was created.
pub fn run_mount(
    fs: &Fs<'_>,
    subdir: &[CString],
    new_dir: NewDir,
    deadline: Instant,
) -> Result<(OwnedFd, bool), MountError> {
    // Synchronous part, in this process: open the context and pass the
    // parameters (parsing only, no I/O), so a bad option is reported at once.
    let fsfd = fsopen(fs.fs_type, FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| {
        MountError::Setup(
            format!("fsopen(\"{}\")", fs.fs_type),
            if e == Errno::NODEV {
                format!(
                    "{e} (this kernel has no {} client: modprobe nfs nfsv4)",
                    fs.fs_type
                )
            } else {
                e.to_string()
            },
        )
    })?;
    for (k, v) in fs.params {
        let r = match v {
            Some(v) => fsconfig_set_string(&fsfd, k.as_str(), v.as_str()),
            None => fsconfig_set_flag(&fsfd, k.as_str()),
        };
        if let Err(e) = r {
            let log = fs_log(fsfd.as_fd());
            let shown = match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            };
            return Err(MountError::Setup(
                format!("fsconfig {}", quote(&shown)),
                format!("{e} {}", log.join("; ")).trim().to_string(),
            ));
        }
    }
    let result = in_child(deadline, |_| child_mount(fsfd.as_fd(), subdir, new_dir));
    match result {
        Ok(r) => Ok(r),
        Err(ChildError::TimedOut) => Err(MountError::TimedOut),
        Err(ChildError::Failed(stage, errno)) => Err(MountError::Failed {
            stage,
            errno,
            log: fs_log(fsfd.as_fd()),
        }),
        Err(ChildError::Io(what, e)) => Err(MountError::Setup(what.into(), e.to_string())),
    }
}

/// The child's work. Only syscalls through rustix on data prepared before
/// the fork: no allocation, no locks.
fn child_mount(
    fsfd: BorrowedFd<'_>,
    subdir: &[CString],
    new_dir: NewDir,
) -> Result<(OwnedFd, bool), (Stage, Errno)> {
    fsconfig_create(fsfd).map_err(|e| (Stage::Create, e))?;
    let mnt = fsmount(fsfd, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| (Stage::Fsmount, e))?;
    if subdir.is_empty() {
        return Ok((mnt, false));
    }
    // open_tree(OPEN_TREE_CLONE) needs a mount attached in our namespace:
    // attach the export in a private copy of it, which dies with the child.
    sys::unshare_mount_ns().map_err(|e| (Stage::Unshare, errno_of(&e)))?;
    let root = openat(
        CWD,
        c"/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| (Stage::Private, e))?;
    sys::mount_setattr(
        root.as_fd(),
        sys::SetAttr {
            propagation: sys::MS_PRIVATE,
            ..Default::default()
        },
    )
    .map_err(|e| (Stage::Private, errno_of(&e)))?;
    move_mount(
        mnt.as_fd(),
        c"",
        root.as_fd(),
        c"",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| (Stage::Attach, e))?;
    let mut cur = mnt;
    let mut created = false;
    for name in subdir {
        let made = match mkdirat(&cur, name.as_c_str(), Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err((Stage::Mkdir, e)),
        };
        let next = crate::walk::open_dir_beneath(cur.as_fd(), name.as_c_str())
            .map_err(|e| (Stage::Open, e))?;
        if made {
            created = true;
            // Created 0700 root: owner and mode set on our fd before anyone
            // can use it; undone if the server refuses.
            let owned = fchown(
                &next,
                Some(Uid::from_raw(new_dir.uid)),
                Some(Gid::from_raw(new_dir.gid)),
            )
            .and_then(|_| fchmod(&next, Mode::from_raw_mode(new_dir.mode)));
            if let Err(e) = owned {
                let _ = unlinkat(&cur, name.as_c_str(), AtFlags::REMOVEDIR);
                return Err((Stage::Owner, e));
            }
        }
        cur = next;
    }
    let tree = open_tree(
        &cur,
        c"",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_EMPTY_PATH,
    )
    .map_err(|e| (Stage::Clone, e))?;
    Ok((tree, created))
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_io_error(e).unwrap_or(Errno::INVAL)
}

#[derive(Debug)]
pub enum ChildError {
    TimedOut,
    Failed(Stage, Errno),
    Io(&'static str, std::io::Error),
}

/// Run `job` in a forked child and receive the fd it returns, or kill it at
/// `deadline`. The reply is 6 bytes: result (0 ok, else the stage), the
/// "created" flag, the errno (little-endian); the fd travels as SCM_RIGHTS.
pub fn in_child<F>(deadline: Instant, job: F) -> Result<(OwnedFd, bool), ChildError>
where
    F: FnOnce(BorrowedFd<'_>) -> Result<(OwnedFd, bool), (Stage, Errno)>,
{
    let (ours, theirs) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| ChildError::Io("socketpair", e.into()))?;
    let pid = sys::fork_child(|| {
        // Die with the hook: a runtime that kills the hook at its hooks.d
        // timeout must not leave a mount helper behind.
        let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let mut msg = [0u8; 6];
        let result = job(theirs.as_fd());
        let fds;
        match &result {
            Ok((fd, created)) => {
                msg[1] = u8::from(*created);
                fds = [fd.as_fd()];
                if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                    return 3;
                }
            }
            Err((stage, errno)) => {
                msg[0] = *stage as u8;
                msg[2..6].copy_from_slice(&errno.raw_os_error().to_le_bytes());
            }
        }
        match sendmsg(
            &theirs,
            &[IoSlice::new(&msg)],
            &mut control,
            SendFlags::empty(),
        ) {
            Ok(_) => 0,
            Err(_) => 4,
        }
    })
    .map_err(|e| ChildError::Io("fork", e))?;
    drop(theirs);
    let reap = |opts: WaitOptions| {
        let _ = waitpid(Some(pid), opts);
    };
    let mut pfd = [PollFd::new(&ours, PollFlags::IN)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = kill_process(pid, Signal::KILL);
            // Reaped if it dies at once; never waited for: a child stuck in
            // the kernel must not hold the container start.
            std::thread::sleep(Duration::from_millis(5));
            reap(WaitOptions::NOHANG);
            return Err(ChildError::TimedOut);
        }
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        match poll(&mut pfd, Some(&ts)) {
            Ok(0) | Err(Errno::INTR) => continue,
            Ok(_) => break,
            Err(e) => {
                let _ = kill_process(pid, Signal::KILL);
                reap(WaitOptions::empty());
                return Err(ChildError::Io("poll", e.into()));
            }
        }
    }
    let mut msg = [0u8; 6];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        &ours,
        &mut [IoSliceMut::new(&mut msg)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    );
    let mut fd = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            fd = fds.next();
        }
    }
    // The child exits right after sending.
    reap(WaitOptions::empty());
    let got = got.map_err(|e| ChildError::Io("recvmsg", e.into()))?;
    if got.bytes != msg.len() {
        return Err(ChildError::Io(
            "mount helper",
            std::io::Error::other("exited without a reply"),
        ));
    }
    match (Stage::from_u8(msg[0]), fd) {
        (None, Some(fd)) if msg[0] == 0 => Ok((fd, msg[1] == 1)),
        (Some(stage), _) => {
            let raw = i32::from_le_bytes([msg[2], msg[3], msg[4], msg[5]]);
            Err(ChildError::Failed(stage, Errno::from_raw_os_error(raw)))
        }
        _ => Err(ChildError::Io(
            "mount helper",
            std::io::Error::other("malformed reply"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(opts: &str) -> NfsVolume {
        NfsVolume {
            host: "fs.example.com".into(),
            port: None,
            export: "/exports/logs".into(),
            subdir: Some("app1".into()),
            options: NfsOptions::parse(opts).unwrap(),
            timeout: 10,
            timeout_rule: "mount_timeout".into(),
        }
    }

    fn step(opts: &str, context: Option<&str>) -> NfsStep {
        NfsStep {
            volume: vol(opts),
            context: context.map(str::to_string),
            new_dir: NewDir {
                uid: 1000,
                gid: 1000,
                mode: 0o755,
            },
        }
    }

    #[test]
    fn options_are_validated_strictly() {
        let o = NfsOptions::parse("vers=4.1,hard,timeo=600").unwrap();
        assert_eq!(o.version, Version::V4_1);
        assert_eq!(
            o.params,
            vec![
                ("hard".to_string(), None),
                ("timeo".to_string(), Some("600".to_string()))
            ]
        );
        assert_eq!(NfsOptions::parse("vers=4").unwrap().version, Version::V4_0);
        assert_eq!(NfsOptions::parse("nfsvers=3").unwrap().version, Version::V3);
        assert_eq!(
            NfsOptions::parse("rsize=65536").unwrap().version,
            Version::V4_1
        );
        let o = NfsOptions::parse("vers=3,proto=udp,nolock,nconnect=4,sec=sys,port=2049").unwrap();
        assert_eq!(o.family, Some(Family::V4));
        for (bad, want) in [
            ("vers=5", "vers=5"),
            ("context=system_u:object_r:x_t:s0", "sets context= itself"),
            ("addr=10.0.0.1", "resolves the server"),
            ("clientaddr=10.0.0.1", "local address"),
            ("ro", "read_only"),
            ("bg", "mount(8)"),
            ("retry=3", "mount_timeout"),
            ("intr", "2.6.25"),
            ("frobnicate", "unknown NFS option \"frobnicate\""),
            ("timeo=0", "must be 1 to 6000"),
            ("timeo=abc", "not a number"),
            ("rsize", "needs a value"),
            ("hard=1", "takes no value"),
            ("hard,soft", "contradict"),
            ("hard,hard", "twice"),
            ("vers=4.1,nfsvers=4.2", "twice"),
            ("proto=sctp", "one of"),
            ("proto=udp,vers=4.2", "needs vers=3"),
            ("sec=krb5\"x", "bad value"),
            ("hard,,soft", "empty option"),
            ("minorversion=1", "vers=4.0"),
        ] {
            let e = NfsOptions::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn server_export_parsing() {
        assert_eq!(
            parse_server_export("FS.example.com:/exports//logs/").unwrap(),
            ("fs.example.com".into(), PathBuf::from("/exports/logs"))
        );
        assert_eq!(
            parse_server_export("[fd00::5]:/x").unwrap(),
            ("fd00::5".into(), PathBuf::from("/x"))
        );
        assert_eq!(
            parse_server_export("10.0.0.5:/").unwrap().1,
            PathBuf::from("/")
        );
        for bad in [
            "host",
            ":/x",
            "host:x",
            "-h:/x",
            "[zz]:/x",
            "h:/a/../b",
            "a b:/x",
        ] {
            assert!(parse_server_export(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn params_and_rendering() {
        let s = step(
            "vers=4.0,hard,timeo=600",
            Some("system_u:object_r:container_file_t:s0:c1,c2"),
        );
        let p = mount_params(
            &s,
            "10.0.0.5".parse().unwrap(),
            Some("10.0.0.9".parse().unwrap()),
            false,
        );
        assert_eq!(
            p[0],
            ("source".into(), Some("fs.example.com:/exports/logs".into()))
        );
        assert_eq!(
            render(&p),
            "vers=4.0,addr=10.0.0.5,clientaddr=10.0.0.9,hard,timeo=600,context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        // fsconfig gets the raw value (quotes are for the mount(2) data string).
        assert_eq!(
            p.last().unwrap().1.as_deref(),
            Some("system_u:object_r:container_file_t:s0:c1,c2")
        );
        // clientaddr only for 4.0; nosharecache on request; URL port.
        let mut s = step("vers=4.2", None);
        s.volume.port = Some(20049);
        let p = mount_params(
            &s,
            "10.0.0.5".parse().unwrap(),
            Some("10.0.0.9".parse().unwrap()),
            true,
        );
        assert_eq!(render(&p), "vers=4.2,addr=10.0.0.5,port=20049,nosharecache");
        // IPv6 server: brackets in the source only.
        let mut s = step("vers=3,nolock", None);
        s.volume.host = "fd00::5".into();
        let p = mount_params(&s, "fd00::5".parse().unwrap(), None, false);
        assert_eq!(p[0].1.as_deref(), Some("[fd00::5]:/exports/logs"));
        assert_eq!(render(&p), "vers=3,addr=fd00::5,nolock");
        assert_eq!(s.volume.display(), "[fd00::5]:/exports/logs/app1");
    }

    #[test]
    fn resolution_and_client_address() {
        let mut v = vol("vers=4.1");
        v.host = "127.0.0.1".into();
        let a = resolve(&v).unwrap();
        assert_eq!(a, "127.0.0.1:2049".parse().unwrap());
        assert_eq!(
            client_addr(a).unwrap(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        v.host = "localhost".into();
        assert!(resolve(&v).is_ok());
        v.host = "no-such-host.invalid".into();
        let e = resolve(&v).unwrap_err();
        assert!(
            e.why
                .starts_with("NFS server name \"no-such-host.invalid\" does not resolve"),
            "{e}"
        );
        v.host = "127.0.0.1".into();
        v.options = NfsOptions::parse("proto=tcp6").unwrap();
        assert!(resolve(&v).unwrap_err().why.contains("no IPv6 address"));
    }

    #[test]
    fn the_deadline_kills_a_stuck_child() {
        let t = Instant::now();
        let r = in_child(t + Duration::from_millis(300), |_| {
            let _ = rustix::thread::nanosleep(&rustix::event::Timespec {
                tv_sec: 30,
                tv_nsec: 0,
            });
            Err((Stage::Create, Errno::INVAL))
        });
        assert!(matches!(r, Err(ChildError::TimedOut)), "{r:?}");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(1300),
            "{took:?}"
        );
        // A failure is reported with its stage and errno, at once.
        let r = in_child(Instant::now() + Duration::from_secs(5), |_| {
            Err((Stage::Mkdir, Errno::ACCESS))
        });
        assert!(
            matches!(r, Err(ChildError::Failed(Stage::Mkdir, Errno::ACCESS))),
            "{r:?}"
        );
    }

    /// The whole child protocol with tmpfs (NFS is not in this host's
    /// kernel): fsopen/fsconfig here, create + sub-directory + clone in the
    /// child, the fd back over SCM_RIGHTS.
    #[test]
    fn mount_with_subdir_through_the_child() {
        let params = vec![("size".to_string(), Some("1m".to_string()))];
        let fs = Fs {
            fs_type: "tmpfs",
            params: &params,
        };
        let sub = [c"app1".to_owned(), c"data".to_owned()];
        let owner = NewDir {
            uid: 4242,
            gid: 4343,
            mode: 0o750,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let (tree, created) = match run_mount(&fs, &sub, owner, deadline) {
            Ok(r) => r,
            Err(MountError::Setup(w, e))
                if e.contains("EPERM") || e.contains("Operation not permitted") =>
            {
                eprintln!("SKIP: needs CAP_SYS_ADMIN ({w}: {e})");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        assert!(created);
        let st = rustix::fs::fstat(&tree).unwrap();
        assert_eq!(
            (st.st_uid, st.st_gid, st.st_mode & 0o7777),
            (4242, 4343, 0o750)
        );
        // The tree is the sub-directory itself: empty, writable.
        let f = openat(
            &tree,
            c"x",
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        drop(f);
        // Without subdir: the root of the new file system.
        let (root, created) = run_mount(&fs, &[], owner, deadline).unwrap();
        assert!(!created);
        assert_eq!(rustix::fs::fstat(&root).unwrap().st_uid, 0);
        // A bad parameter is reported synchronously with the kernel's words.
        let bad = vec![("bogus".to_string(), Some("1".to_string()))];
        let e = run_mount(
            &Fs {
                fs_type: "tmpfs",
                params: &bad,
            },
            &[],
            owner,
            deadline,
        )
        .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn the_timeout_error_names_server_export_and_deadline() {
        let s = step("vers=4.1", None);
        let limit = Limit {
            secs: 10.0,
            capped: false,
            start: Instant::now(),
        };
        let e = explain(
            &s,
            "10.0.0.5:2049".parse().unwrap(),
            "vers=4.1,addr=10.0.0.5",
            &limit,
            Duration::ZERO,
            MountError::TimedOut,
        )
        .about("volume \"shared-logs:/var/log/app\"");
        let t = e.to_string();
        assert!(
            t.starts_with("volume \"shared-logs:/var/log/app\" failed: NFS mount of fs.example.com:/exports/logs/app1 from server fs.example.com (10.0.0.5:2049) did not complete within the deadline of 10 s (mount_timeout)"),
            "{t}"
        );
        assert!(t.contains("container not started"), "{t}");
        let capped = Limit {
            secs: 2.5,
            capped: true,
            start: Instant::now(),
        };
        let t = explain(
            &s,
            "10.0.0.5:2049".parse().unwrap(),
            "",
            &capped,
            Duration::from_secs(1),
            MountError::TimedOut,
        )
        .to_string();
        assert!(t.contains("deadline of 2.5 s"), "{t}");
        assert!(t.contains("budget of 110 s"), "{t}");
        assert!(t.contains("resolving the name took 1.0 s"), "{t}");
        let t = explain(
            &s,
            "10.0.0.5:2049".parse().unwrap(),
            "",
            &limit,
            Duration::ZERO,
            MountError::Failed {
                stage: Stage::Create,
                errno: Errno::NOENT,
                log: vec!["e NFS4: Couldn't follow remote path".into()],
            },
        )
        .to_string();
        assert!(t.contains("does not exist on the server"), "{t}");
        assert!(
            t.contains("[kernel: e NFS4: Couldn't follow remote path]"),
            "{t}"
        );
    }
}

/// Host micro-benchmark of what the hook adds around a mount (fork, socket,
/// fd passing, reap): `cargo test --release nfs::bench -- --ignored --nocapture`.
/// NFS is not in this host's kernel, so it times tmpfs: `run_mount` against
/// the same fsopen/fsconfig/fsmount made inline.
#[cfg(test)]
mod bench {
    use super::*;

    #[test]
    #[ignore]
    fn overhead_of_the_mount_child() {
        let params = vec![("size".to_string(), Some("1m".to_string()))];
        let fs = Fs {
            fs_type: "tmpfs",
            params: &params,
        };
        let owner = NewDir {
            uid: 0,
            gid: 0,
            mode: 0o755,
        };
        let n = 300u32;
        let t = Instant::now();
        for _ in 0..n {
            let fd = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).unwrap();
            fsconfig_set_string(&fd, "size", "1m").unwrap();
            fsconfig_create(&fd).unwrap();
            drop(fsmount(&fd, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).unwrap());
        }
        let inline = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n {
            let deadline = Instant::now() + Duration::from_secs(5);
            drop(run_mount(&fs, &[], owner, deadline).unwrap());
        }
        let child = t.elapsed() / n;
        let sub = [c"a".to_owned()];
        let t = Instant::now();
        for _ in 0..n {
            let deadline = Instant::now() + Duration::from_secs(5);
            drop(run_mount(&fs, &sub, owner, deadline).unwrap());
        }
        let with_subdir = t.elapsed() / n;
        eprintln!(
            "bench: inline mount {inline:?}; in the child {child:?} (+{:?}); with a subdir (private namespace, mkdir, clone) {with_subdir:?} (+{:?})",
            child.saturating_sub(inline),
            with_subdir.saturating_sub(inline)
        );
    }
}
