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
