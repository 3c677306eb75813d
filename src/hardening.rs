//! Process hygiene before the hook touches anything: the environment, the
//! working directory and the descriptors the runtime (or an image) handed
//! us are all hostile (CVE-2025-23266: an image's LD_PRELOAD reached a
//! privileged hook; CVE-2024-21626: a leaked fd).

use std::ffi::OsString;
use std::io;

use crate::sys;

/// Close inherited fds, empty the environment and set a umask. Call first
/// thing in `main`, while single-threaded, then [`no_new_privs`]. Returns
/// the environment it emptied, for the one verb that hands it on to the
/// program it runs (`nspawn`); nothing else reads it.
pub fn harden_early() -> io::Result<Vec<(OsString, OsString)>> {
    sys::close_inherited_fds()?;
    let caller_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (key, _) in &caller_env {
        std::env::remove_var(key);
    }
    // Nothing is exec'd, but no helper must ever be looked up through a PATH
    // the runtime or an image chose.
    std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    Ok(caller_env)
}

/// Set no_new_privs: nothing this process runs can gain privileges. Every
/// verb but `nspawn` sets it right after parsing its command line;
/// `nspawn` does not, as the flag would be inherited by systemd-nspawn and
/// by everything in the machine (whose setuid programs would then stop
/// working).
pub fn no_new_privs() -> io::Result<()> {
    rustix::thread::set_no_new_privs(true)?;
    Ok(())
}

/// Leave the caller's working directory (paths on the command line must
/// already be absolute).
pub fn leave_cwd() -> io::Result<()> {
    rustix::process::chdir("/")?;
    Ok(())
}

/// The capabilities a command keeps once its input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapProfile {
    /// Mount (SYS_ADMIN), enter the mount namespace (SYS_ADMIN + SYS_CHROOT),
    /// open another user's /proc/PID/ns (SYS_PTRACE), create and chown
    /// volumes and mount points (CHOWN, FOWNER, FSETID, DAC_*), build a user
    /// namespace for idmap (SETUID, SETGID), stop a stuck NFS mount child (KILL).
    Attach,
    /// Read records, volumes and their xattrs (trusted.* needs SYS_ADMIN).
    Inspect,
    /// The `nspawn` launcher: Attach's capabilities are the effective ones
    /// (it prepares the volumes, mounts and unmounts its per-run mounts
    /// until it exits). The permitted and bounding sets are left whole:
    /// systemd-nspawn, exec'd as root, gets its capabilities from them and
    /// needs most of them; and an exec that gains permitted capabilities
    /// clears the parent-death signal (commit_creds), which must survive
    /// so that nspawn stops when the launcher is killed.
    Launch,
}

/// Keep only the capabilities `profile` allows: the effective, permitted and
/// bounding sets lose the rest, the inheritable and ambient sets are emptied.
/// A process that has fewer to begin with (not root) keeps what it has.
///
/// One `capget`, one `PR_CAPBSET_DROP` per capability not kept (no read
/// first: dropping an absent capability succeeds), one ambient clear and
/// one `capset` (35 syscalls for Attach where the `caps` crate made 79).
pub fn drop_capabilities(profile: CapProfile) -> std::io::Result<()> {
    use rustix::thread::{self as t, CapabilitySet as C, CapabilitySets};
    let wanted = match profile {
        CapProfile::Attach | CapProfile::Launch => {
            C::SYS_ADMIN
                | C::SYS_CHROOT
                | C::SYS_PTRACE
                | C::CHOWN
                | C::FOWNER
                | C::FSETID
                | C::DAC_OVERRIDE
                | C::DAC_READ_SEARCH
                | C::SETUID
                | C::SETGID
                | C::KILL
        }
        CapProfile::Inspect => C::SYS_ADMIN | C::DAC_OVERRIDE | C::DAC_READ_SEARCH | C::SYS_PTRACE,
    };
    let now = t::capabilities(None)?;
    let keep = wanted & now.permitted;
    let launch = profile == CapProfile::Launch;
    // Every capability the kernel knows that is not kept; EINVAL marks the
    // end of the kernel's list. Dropping needs CAP_SETPCAP: without it
    // (EPERM) the bounding set stays as it is (no_new_privs already stops
    // gaining privileges through exec). The launcher keeps its bounding set
    // for systemd-nspawn.
    for bit in 0..if launch { 0 } else { u64::BITS } {
        let cap = C::from_bits_retain(1 << bit);
        if keep.contains(cap) {
            continue;
        }
        match t::remove_capability_from_bounding_set(cap) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::PERM) => break,
            Err(e) => return Err(e.into()),
        }
    }
    t::clear_ambient_capability_set().ok();
    t::set_capabilities(
        None,
        CapabilitySets {
            effective: keep,
            permitted: if launch { now.permitted } else { keep },
            inheritable: C::empty(),
        },
    )?;
    Ok(())
}
