//! Process hygiene before the hook touches anything: the environment, the
//! working directory and the descriptors the runtime (or an image) handed
//! us are all hostile (CVE-2025-23266: an image's LD_PRELOAD reached a
//! privileged hook; CVE-2024-21626: a leaked fd).

use std::io;

use crate::sys;

/// Close inherited fds, empty the environment, set a umask and
/// no_new_privs. Call first thing in `main`, while single-threaded.
pub fn harden_early() -> io::Result<()> {
    sys::close_inherited_fds()?;
    for (key, _) in std::env::vars_os() {
        std::env::remove_var(key);
    }
    // Nothing is exec'd, but no helper must ever be looked up through a PATH
    // the runtime or an image chose.
    std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
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
        CapProfile::Attach => {
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
    // Every capability the kernel knows that is not kept; EINVAL marks the
    // end of the kernel's list. Dropping needs CAP_SETPCAP: without it
    // (EPERM) the bounding set stays as it is (no_new_privs already stops
    // gaining privileges through exec).
    for bit in 0..u64::BITS {
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
            permitted: keep,
            inheritable: C::empty(),
        },
    )?;
    Ok(())
}
