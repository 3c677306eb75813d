//! nspawn: a launcher for systemd-nspawn, which runs no OCI hooks. It gives
//! a machine the same volumes, under the same policy, as prestart gives a
//! container:
//!
//! 1. decide: the `--volume` specs (the annotation grammar) → policy →
//!    plan, as prestart; `idmap` is refused (the machine's user namespace
//!    does not exist before nspawn starts);
//! 2. open and check every source that exists; destinations are nspawn's,
//!    which resolves `--bind` destinations inside the machine's root itself;
//! 3. claim: under the claims lock, as prestart; the record is keyed on the
//!    machine name and holds the launcher's own pid and start time, so a
//!    killed launcher leaves a record every later run sees as stale;
//! 4. prepare each volume (create, relabel, chown, clone with its
//!    attributes) and attach it at `state_dir/nspawn/MACHINE/N`;
//! 5. run /usr/bin/systemd-nspawn with `--bind=`/`--bind-ro=` for those,
//!    forwarding SIGINT, SIGTERM and SIGHUP;
//! 6. when it exits, for any reason: unmount, remove, release the claim;
//!    exit with its status.
//!
//! Any failure before step 5 exits non-zero: the machine never starts
//! without its volumes.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use log::{debug, info, warn};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

use crate::apply::{self, staging};
use crate::config::Config;
use crate::error::{volume_subject, HookError};
use crate::input::annotations::parse_annotation;
use crate::input::bundle::{Bundle, Root, Spec};
use crate::input::nspawn::{self as args, NspawnArgs};
use crate::plan;
use crate::policy;
use crate::record::{claims, StateDir};

/// systemd-nspawn, by its absolute path: the caller's PATH is never used.
pub const NSPAWN: &str = "/usr/bin/systemd-nspawn";

/// What the launcher was asked to run, and where from.
pub struct Launch {
    /// systemd-nspawn's own arguments, handed on unchanged.
    pub args: Vec<OsString>,
    /// The caller's working directory, nspawn's again.
    pub cwd: PathBuf,
    /// The caller's environment, handed to nspawn (see [`nspawn_env`]).
    pub env: Vec<(OsString, OsString)>,
}

/// A volume attached at its per-run place, for nspawn's `--bind`.
struct Staged {
    path: PathBuf,
    dest: PathBuf,
    read_only: bool,
}

pub fn run(config: &Config, specs: &[String], launch: Launch) -> Result<u8, HookError> {
    let scanned = args::scan(&launch.args);
    let machine = args::machine_name(&scanned, &launch.cwd, &hostname())?;
    crate::logging::set_container(&machine);
    // From here on a signal is held for nspawn, or ends the launch before
    // nspawn runs: never half-way through the preparation.
    let signals = Signals::register()?;

    let requests = parse_annotation(&specs.join(";"))?;
    if let Some(r) = requests.iter().find(|r| r.options.idmap) {
        return Err(HookError::invalid(
            volume_subject(&r.spec),
            "option idmap cannot be used with `oci-volume-hook nspawn`: the machine's user namespace does not exist before systemd-nspawn starts",
        )
        .hint("remove idmap; option U gives the volume to root, the machine's user without --private-users"));
    }
    let volumes = requests
        .iter()
        .map(|r| policy::resolve(config, r))
        .collect::<Result<Vec<_>, _>>()?;
    let root = machine_root(&scanned, &launch.cwd);
    let bundle = Bundle {
        dir: root.clone(),
        spec: Spec {
            root: Some(Root { path: root.clone() }),
            ..Spec::default()
        },
    };
    let plan = plan::build(
        &bundle,
        &volumes,
        &super::prestart::selinux_host(&bundle, &volumes),
    )?;

    // Every check that can refuse the start, before any change.
    let sources =
        apply::open_sources(&plan, None, crate::fd::Owners::ROOT).map_err(HookError::from)?;
    let keys = sources.keys();
    let records = StateDir::open(&config.state_dir, true)?
        .ok_or_else(|| HookError::failed("state_dir", "missing after creation"))?;
    let me = std::process::id() as i32;
    let mut record = claims::claim(&machine, PathBuf::new(), root, me, &plan.steps, &keys);
    let base = {
        let _lock = records.lock()?;
        let live = records.live_records();
        if let Some(r) = live.iter().find(|r| r.id == machine) {
            return Err(HookError::failed(
                "nspawn",
                format!(
                    "machine {machine} already holds volumes (pid {})",
                    r.pid.map_or("?".into(), |p| p.to_string())
                ),
            )
            .hint("stop that machine first, or give this one another name with --machine"));
        }
        claims::check_all(&plan.steps, &keys, &live, &machine)?;
        let base = staging::base(&config.state_dir).map_err(|e| {
            HookError::failed(
                "state_dir",
                format!("prepare {}: {e}", config.state_dir.join("nspawn").display()),
            )
        })?;
        // What a launcher of this machine that was killed left behind (its
        // record was stale, or there would be a live one).
        for e in staging::clear(&base.join(&machine)) {
            warn!("{e}");
        }
        records.write(&record)?;
        base
    };
    let run_dir = base.join(&machine);

    let staged = match stage(sources, &super::protected(config), &base, &machine) {
        Ok(s) => s,
        Err(e) => {
            release(&records, &machine, &run_dir);
            return Err(e);
        }
    };
    for (v, (_, key)) in record.volumes.iter_mut().zip(&staged) {
        v.source = key.path.clone();
        v.id = key.id;
    }
    record.attached = true;
    if let Err(e) = records.write(&record) {
        release(&records, &machine, &run_dir);
        return Err(e);
    }

    let status = match signals.pending().first() {
        // Asked to stop before nspawn ran: it never runs.
        Some(&sig) => {
            info!(
                "signal {} before systemd-nspawn started: not starting it",
                sig.as_raw()
            );
            128 + sig.as_raw() as u8
        }
        None => {
            let mut argv: Vec<OsString> = staged
                .iter()
                .map(|(s, _)| args::bind_arg(&s.path, &s.dest, s.read_only))
                .collect();
            argv.extend(launch.args);
            match spawn(&argv, &launch.cwd, launch.env) {
                Ok(child) => supervise(child, &signals),
                Err(e) => {
                    release(&records, &machine, &run_dir);
                    return Err(e);
                }
            }
        }
    };
    release(&records, &machine, &run_dir);
    Ok(status)
}

/// Prepare every volume and attach it under `run_dir`, in plan order.
fn stage(
    sources: apply::Sources<'_>,
    protected: &apply::Protected,
    base: &Path,
    machine: &str,
) -> Result<Vec<(Staged, apply::SourceKey)>, HookError> {
    let prepared = sources.prepare(protected).map_err(HookError::from)?;
    let run_dir = &staging::run_dir(base, machine).map_err(|e| {
        HookError::failed(
            "state_dir",
            format!("mkdir {}: {e}", base.join(machine).display()),
        )
    })?;
    let mut staged = Vec::with_capacity(prepared.len());
    for (n, p) in prepared.into_iter().enumerate() {
        let path = staging::attach(run_dir, n, &p.tree, p.source.is_dir).map_err(|e| {
            HookError::failed(
                volume_subject(&p.step.spec),
                format!("move_mount into {}/{n}: {e}", run_dir.display()),
            )
        })?;
        info!(
            "staged {} for {} at {}{}",
            p.source.path.display(),
            p.step.dest.display(),
            path.display(),
            if p.step.attrs.read_only { " (ro)" } else { "" }
        );
        staged.push((
            Staged {
                path,
                dest: p.step.dest.clone(),
                read_only: p.step.attrs.read_only,
            },
            apply::SourceKey {
                path: p.source.path,
                id: Some(p.source.id),
            },
        ));
    }
    Ok(staged)
}

/// Unmount and remove the run's mounts, then release the claim. Best
/// effort: every error is logged, nothing stops the rest.
fn release(records: &StateDir, machine: &str, run_dir: &Path) {
    for e in staging::clear(run_dir) {
        warn!("{e}");
    }
    match records.remove(machine) {
        Ok(true) => info!("released the volumes"),
        Ok(false) => debug!("no record to remove"),
        Err(e) => warn!("{e}"),
    }
}

/// The machine's root as nspawn will find it, for the record: the
/// directory or image given, else the working directory; empty when only
/// `--machine` names it (nspawn then searches /var/lib/machines and others).
fn machine_root(a: &NspawnArgs, cwd: &Path) -> PathBuf {
    match (&a.directory, &a.image, &a.machine) {
        (Some(p), _, _) | (None, Some(p), _) => cwd.join(p),
        (None, None, Some(_)) => PathBuf::new(),
        (None, None, None) => cwd.to_path_buf(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The environment nspawn gets: the caller's (`SYSTEMD_NSPAWN_*`,
/// `NOTIFY_SOCKET`, `TERM`, ...) without the dynamic loader's `LD_*`
/// variables, and with a fixed PATH.
fn nspawn_env(env: Vec<(OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let mut out: Vec<(OsString, OsString)> = env
        .into_iter()
        .filter(|(k, _)| !k.as_bytes().starts_with(b"LD_") && k != "PATH")
        .collect();
    out.push(("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()));
    out
}

fn spawn(
    argv: &[OsString],
    cwd: &Path,
    env: Vec<(OsString, OsString)>,
) -> Result<Child, HookError> {
    let mut cmd = std::process::Command::new(NSPAWN);
    cmd.args(argv)
        .env_clear()
        .envs(nspawn_env(env))
        .current_dir(cwd);
    // A launcher that is killed takes its machine down (nspawn stops the
    // machine on SIGTERM) instead of leaving it running without a claim.
    crate::sys::die_with_parent(&mut cmd, rustix::process::getpid(), Signal::TERM);
    debug!(
        "running {NSPAWN} {}",
        argv.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.spawn().map_err(|e| {
        HookError::failed("nspawn", format!("run {NSPAWN}: {e}"))
            .hint("install systemd-nspawn (Debian: systemd-container)")
    })
}

/// Wait for nspawn, forwarding the signals that arrive; its exit status,
/// or 128+N when signal N killed it.
fn supervise(mut child: Child, signals: &Signals) -> u8 {
    let pid = Pid::from_child(&child);
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok();
    loop {
        for sig in signals.pending() {
            info!("forwarding signal {} to systemd-nspawn", sig.as_raw());
            if let Err(e) = rustix::process::kill_process(pid, sig) {
                warn!("forward signal {} to systemd-nspawn: {e}", sig.as_raw());
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => return exit_status(status),
            Ok(None) => {}
            Err(e) => {
                warn!("wait for systemd-nspawn: {e}");
                return child.wait().map_or(1, exit_status);
            }
        }
        let mut fds = vec![PollFd::new(&signals.read, PollFlags::IN)];
        if let Some(fd) = &pidfd {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        // Without a pidfd (Linux before 5.3), look again every 100 ms.
        let tick = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        match poll(&mut fds, pidfd.is_none().then_some(&tick)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => {
                warn!("poll: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

fn exit_status(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => 128u8.wrapping_add(s as u8),
        (None, None) => 1,
    }
}

/// SIGINT, SIGTERM and SIGHUP, caught: each sets its flag and wakes a
/// socket (signal-hook's self-pipe, async-signal-safe), so the main loop
/// can poll for them beside nspawn's pidfd. The handlers stay installed
/// until the process exits: a signal never interrupts the cleanup.
struct Signals {
    read: UnixStream,
    flags: Vec<(Signal, Arc<AtomicBool>)>,
}

impl Signals {
    fn register() -> Result<Signals, HookError> {
        let fail = |e: std::io::Error| HookError::failed("nspawn", format!("signal handlers: {e}"));
        let (read, write) = UnixStream::pair().map_err(fail)?;
        read.set_nonblocking(true).map_err(fail)?;
        let mut flags = Vec::new();
        for sig in [Signal::INT, Signal::TERM, Signal::HUP] {
            let flag = Arc::new(AtomicBool::new(false));
            // The flag first: it is set before the wake-up is written.
            signal_hook::flag::register(sig.as_raw(), Arc::clone(&flag)).map_err(fail)?;
            signal_hook::low_level::pipe::register(sig.as_raw(), write.try_clone().map_err(fail)?)
                .map_err(fail)?;
            flags.push((sig, flag));
        }
        Ok(Signals { read, flags })
    }

    /// The signals that arrived since the last call (and empty the socket).
    fn pending(&self) -> Vec<Signal> {
        let mut buf = [0u8; 64];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
        self.flags
            .iter()
            .filter(|(_, f)| f.swap(false, Ordering::SeqCst))
            .map(|(s, _)| *s)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_for_nspawn() {
        let env = nspawn_env(vec![
            ("LD_PRELOAD".into(), "/tmp/x.so".into()),
            ("LD_LIBRARY_PATH".into(), "/tmp".into()),
            ("PATH".into(), "/tmp/bin".into()),
            ("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY".into(), "1".into()),
            ("NOTIFY_SOCKET".into(), "/run/systemd/notify".into()),
        ]);
        let keys: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(
            keys,
            ["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "NOTIFY_SOCKET", "PATH"]
        );
        assert_eq!(env[2].1, "/usr/sbin:/usr/bin:/sbin:/bin");
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_status(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_status(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_status(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_status(ExitStatus::from_raw(15)), 143);
    }

    #[test]
    fn machine_roots() {
        let cwd = Path::new("/srv");
        let scan = |a: &[&str]| args::scan(&a.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(
            machine_root(&scan(&["-D", "m/app"]), cwd),
            Path::new("/srv/m/app")
        );
        assert_eq!(
            machine_root(&scan(&["-i", "/i/a.raw"]), cwd),
            Path::new("/i/a.raw")
        );
        assert_eq!(machine_root(&scan(&["-M", "app"]), cwd), Path::new(""));
        assert_eq!(machine_root(&scan(&[]), cwd), Path::new("/srv"));
    }
}
