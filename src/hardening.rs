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
pub fn drop_capabilities(profile: CapProfile) -> Result<(), caps::errors::CapsError> {
    use caps::{CapSet, Capability as C, CapsHashSet};
    let wanted: &[C] = match profile {
        CapProfile::Attach => &[
            C::CAP_SYS_ADMIN,
            C::CAP_SYS_CHROOT,
            C::CAP_SYS_PTRACE,
            C::CAP_CHOWN,
            C::CAP_FOWNER,
            C::CAP_FSETID,
            C::CAP_DAC_OVERRIDE,
            C::CAP_DAC_READ_SEARCH,
            C::CAP_SETUID,
            C::CAP_SETGID,
            C::CAP_KILL,
        ],
        CapProfile::Inspect => &[
            C::CAP_SYS_ADMIN,
            C::CAP_DAC_OVERRIDE,
            C::CAP_DAC_READ_SEARCH,
            C::CAP_SYS_PTRACE,
        ],
    };
    let permitted = caps::read(None, CapSet::Permitted)?;
    let keep: CapsHashSet = wanted
        .iter()
        .copied()
        .filter(|c| permitted.contains(c))
        .collect();
    for cap in caps::read(None, CapSet::Bounding)? {
        if !keep.contains(&cap) {
            // Needs CAP_SETPCAP; without it the bounding set stays as it is
            // (no_new_privs already stops gaining privileges through exec).
            let _ = caps::drop(None, CapSet::Bounding, cap);
        }
    }
    caps::clear(None, CapSet::Ambient).ok();
    caps::clear(None, CapSet::Inheritable)?;
    caps::set(None, CapSet::Effective, &keep)?;
    caps::set(None, CapSet::Permitted, &keep)?;
    Ok(())
}
