//! The only module with `unsafe`: raw syscalls that rustix does not wrap.
//! Each block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
/// `MS_PRIVATE`, as the `propagation` field of `struct mount_attr`.
pub const MS_PRIVATE: u64 = 1 << 18;

/// `struct mount_attr` (linux/mount.h, MOUNT_ATTR_SIZE_VER0 = 32 bytes).
#[repr(C)]
#[derive(Debug, Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// What to change on a mount tree with `mount_setattr(2)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SetAttr {
    pub set: u64,
    pub clear: u64,
    pub propagation: u64,
    /// A user-namespace fd for `MOUNT_ATTR_IDMAP`.
    pub userns_fd: Option<i32>,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, attr)` on a detached
/// or attached mount tree referred to by `fd`.
pub fn mount_setattr(fd: BorrowedFd<'_>, attr: SetAttr) -> io::Result<()> {
    let mut raw = MountAttr {
        attr_set: attr.set,
        attr_clr: attr.clear,
        propagation: attr.propagation,
        userns_fd: attr.userns_fd.map_or(0, |f| f as u64),
    };
    let flags = libc::AT_EMPTY_PATH | libc::AT_RECURSIVE;
    // SAFETY: `fd` is a valid open descriptor for the duration of the call
    // (BorrowedFd), the path is a NUL-terminated static empty string, and
    // `raw` is a properly initialised `struct mount_attr` whose exact size is
    // passed, so the kernel reads only memory we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as libc::c_uint,
            &mut raw as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Close every descriptor from 3 up: nothing the runtime (or an image)
/// leaked to the hook survives (CVE-2024-21626 was a leaked fd).
pub fn close_inherited_fds() -> io::Result<()> {
    // SAFETY: close_range(2) takes plain integers. It runs first thing in
    // main, before this process opened any descriptor it owns above 2, so no
    // OwnedFd or File in this program refers to a closed number afterwards.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc == 0 {
        return Ok(());
    }
    // Kernels before 5.9: close what /proc says is open.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: as above, no owned handle in this program refers to these
        // numbers; the read_dir handle is already dropped, and EBADF is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Give the calling thread its own working directory, root and umask
/// (`unshare(CLONE_FS)`), so a walker thread can `fchdir` without moving
/// the rest of the process.
pub fn unshare_fs() -> io::Result<()> {
    // SAFETY: CLONE_FS only separates the cwd, root and umask of this thread
    // from the others; no file descriptor table is unshared (the hazard the
    // rustix docs name), and nothing in this program relies on a cwd shared
    // between threads.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }?;
    Ok(())
}

/// Give this process its own copy of the mount table
/// (`unshare(CLONE_NEWNS)`). Used only in the NFS mount child.
pub fn unshare_mount_ns() -> io::Result<()> {
    // SAFETY: CLONE_NEWNS copies the mount namespace only; it does not
    // unshare the fd table or memory (the hazards rustix's docs name), and
    // the caller is a single-threaded forked child that exits soon after.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }?;
    Ok(())
}

/// Fork. The child closes its stdin, stdout and stderr, runs `child` and
/// leaves with `_exit(status)` (no atexit handlers, no unwinding into the
/// parent's code); the parent gets its pid.
///
/// `child` must only make system calls on data prepared before the fork
/// (rustix calls on fds and `CStr`s, no allocation, no locks): the parent
/// may have other threads (the test harness does) whose locks the child
/// inherits held.
pub fn fork_child(child: impl FnOnce() -> i32) -> io::Result<rustix::process::Pid> {
    // SAFETY: fork(2) itself has no memory-safety preconditions. The child
    // half below runs only `child`, whose contract (above) is to make
    // async-signal-safe system calls, and then `_exit`, so no lock held by
    // another thread of the parent is ever taken in the child.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            for fd in 0..=2 {
                // SAFETY: close(2) on a plain integer. The child gives up
                // stdin, stdout and stderr so that a runtime waiting for the
                // end of the hook's output (runc collects it through pipes)
                // never waits for a helper still dying in the kernel; nothing
                // in the child uses them and no OwnedFd refers to them.
                unsafe { libc::close(fd) };
            }
            let status =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(127);
            // SAFETY: _exit(2) ends the child without running the parent's
            // atexit handlers or destructors of shared state.
            unsafe { libc::_exit(status) }
        }
        pid => rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| io::Error::other("fork returned an invalid pid")),
    }
}

/// Have the child that `cmd` spawns receive `signal` when this process dies
/// (`PR_SET_PDEATHSIG`), and not start at all when its parent is already
/// gone by then (its parent is no longer `parent`).
pub fn die_with_parent(
    cmd: &mut std::process::Command,
    parent: rustix::process::Pid,
    signal: rustix::process::Signal,
) {
    use std::os::unix::process::CommandExt;
    let hook = move || -> io::Result<()> {
        rustix::process::set_parent_process_death_signal(Some(signal))?;
        if rustix::process::getppid() != Some(parent) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the closure runs in the forked child between fork and exec.
    // It makes two system calls through rustix (prctl, getppid), which are
    // async-signal-safe, allocates nothing (the error is a raw OS error) and
    // takes no lock, so no state of the parent's other threads is touched.
    unsafe { cmd.pre_exec(hook) };
}
