//! NFS volumes: an export mounted by the hook itself with the kernel's mount
//! API (fsopen/fsconfig/fsmount, never /bin/mount), in the host's mount and
//! network namespaces, as a detached mount that `apply::attach` attaches in
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
//!   container's file label from plan::selinux::target_context, level s0 for z). A mount refused because the
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

mod address;
mod child;
mod params;

use std::ffi::CString;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::apply::ApplyError;
use crate::config::nfs::{Version, NFS_PORT};
use crate::plan::NfsStep;

pub(crate) use address::{client_addr, resolve};
use child::{run_mount, ChildStep, Fs, MountError};
use params::{mount_params, render};

/// What `check` shows: the mount the hook would make, without making it.
pub struct Described {
    pub server: String,
    pub mount: String,
    pub resolved: Result<SocketAddr, ApplyError>,
}

pub fn describe(step: &NfsStep, context: Option<&str>) -> Described {
    let v = &step.volume;
    let resolved = resolve(v);
    let (addr, client) = match &resolved {
        Ok(a) => (a.ip(), client_addr(*a).ok()),
        Err(_) => ("0.0.0.0".parse().expect("literal"), None),
    };
    let params = mount_params(step, context, addr, client, false);
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
            Err(e) => e.to_string(),
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
pub fn mount(
    step: &NfsStep,
    context: Option<&str>,
    not_after: Instant,
) -> Result<Mounted, ApplyError> {
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
            ApplyError::unusable(format!(
                "no route from this host to NFS server {} ({}): {e}",
                v.host,
                server.ip()
            ))
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
            .map_err(|_| ApplyError::unusable("subdir contains a NUL byte"))?,
    };
    let mut nosharecache = false;
    loop {
        let params = mount_params(step, context, server.ip(), client, nosharecache);
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
                    options,
                    created,
                });
            }
            // The same export mounted with another context on a kernel that
            // refuses to share the superblock: once more, with our own.
            Err(MountError::Failed {
                stage: ChildStep::Create,
                errno,
                ..
            }) if (errno == Errno::BUSY || errno == Errno::INVAL)
                && context.is_some()
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
            Err(e) => {
                return Err(explain(
                    step,
                    context,
                    server,
                    &options,
                    &limit,
                    resolved_in,
                    e,
                ))
            }
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
    context: Option<&str>,
    server: SocketAddr,
    options: &str,
    limit: &Limit,
    resolved_in: Duration,
    e: MountError,
) -> ApplyError {
    let v = &step.volume;
    let at = format!(
        "NFS mount of {} from server {} ({})",
        v.display(),
        v.host,
        server
    );
    match e {
        MountError::TimedOut => ApplyError::unusable(
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
        MountError::Setup(what, err) => ApplyError::unusable(format!("{at}: {what}: {err}")),
        MountError::Failed { stage, errno, log } => {
            let log = if log.is_empty() {
                String::new()
            } else {
                format!(" [kernel: {}]", log.join("; "))
            };
            let hint = match (stage, errno) {
                (ChildStep::Create, Errno::NOENT) => "the export path does not exist on the server (wrong or stale export): check nfs = and the server's exports".to_string(),
                (ChildStep::Create, Errno::ACCESS | Errno::PERM) => format!(
                    "the server refused this host ({}), or SELinux denied the mount{}: check the server's exports; `ausearch -m avc -ts recent` shows SELinux denials. {}",
                    client_addr(server).map(|a| a.to_string()).unwrap_or_else(|_| "?".into()),
                    if context.is_some() { " with context=" } else { "" },
                    crate::input::selinux::boolean_note()
                ),
                (ChildStep::Create, Errno::STALE) => "stale file handle: the export was removed or re-created on the server".into(),
                (ChildStep::Create, Errno::PROTONOSUPPORT | Errno::PROTO | Errno::NOTSUP) => format!(
                    "the server does not offer NFS {}: set vers= in the volume's options",
                    v.options.version.as_str()
                ),
                (ChildStep::Create, Errno::CONNREFUSED | Errno::HOSTUNREACH | Errno::NETUNREACH | Errno::TIMEDOUT | Errno::CONNRESET) =>
                    format!("the server is not reachable from this host on port {}", v.port.unwrap_or(NFS_PORT)),
                (ChildStep::Create, Errno::INVAL) => format!("the kernel refused the options {options}"),
                (ChildStep::Open, Errno::LOOP | Errno::XDEV | Errno::NOTDIR) =>
                    "the sub-directory is a symlink, not a directory, or another file system on the export: refused (volumes never leave the export)".into(),
                (ChildStep::Mkdir | ChildStep::Owner, Errno::ACCESS | Errno::PERM) =>
                    "the server does not let root create or chown it (root_squash?): create the sub-directory on the server with the container's owner".into(),
                (ChildStep::Open | ChildStep::Mkdir, Errno::NOENT) => "the sub-directory was removed while the hook ran; start again".into(),
                _ => format!("options {options}"),
            };
            ApplyError::unusable(format!("{at}: {}: {errno}{log}", stage.what()))
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

/// The NFS volume and step the unit tests of this folder share.
#[cfg(test)]
mod fixture {
    use crate::config::nfs::NfsOptions;
    use crate::plan::{NewDir, NfsStep};
    use crate::policy::NfsVolume;

    pub(super) fn vol(opts: &str) -> NfsVolume {
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

    pub(super) fn step(opts: &str) -> NfsStep {
        NfsStep {
            volume: vol(opts),
            new_dir: NewDir {
                uid: 1000,
                gid: 1000,
                mode: 0o755,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixture::step;

    #[test]
    fn the_timeout_error_names_server_export_and_deadline() {
        let s = step("vers=4.1");
        let limit = Limit {
            secs: 10.0,
            capped: false,
            start: Instant::now(),
        };
        let e = explain(
            &s,
            None,
            "10.0.0.5:2049".parse().unwrap(),
            "vers=4.1,addr=10.0.0.5",
            &limit,
            Duration::ZERO,
            MountError::TimedOut,
        )
        .into_hook("volume \"shared-logs:/var/log/app\"");
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
            None,
            "10.0.0.5:2049".parse().unwrap(),
            "",
            &capped,
            Duration::from_secs(1),
            MountError::TimedOut,
        )
        .into_hook("volume \"shared-logs:/var/log/app\"")
        .to_string();
        assert!(t.contains("deadline of 2.5 s"), "{t}");
        assert!(t.contains("budget of 110 s"), "{t}");
        assert!(t.contains("resolving the name took 1.0 s"), "{t}");
        let t = explain(
            &s,
            None,
            "10.0.0.5:2049".parse().unwrap(),
            "",
            &limit,
            Duration::ZERO,
            MountError::Failed {
                stage: ChildStep::Create,
                errno: Errno::NOENT,
                log: vec!["e NFS4: Couldn't follow remote path".into()],
            },
        )
        .into_hook("volume \"shared-logs:/var/log/app\"")
        .to_string();
        assert!(t.contains("does not exist on the server"), "{t}");
        assert!(
            t.contains("[kernel: e NFS4: Couldn't follow remote path]"),
            "{t}"
        );
    }
}
