//! The forked mount child. The blocking part of an NFS mount (creating the
//! superblock, the sub-directory) runs in a child that hands the detached
//! mount back over a socket (SCM_RIGHTS); past the deadline the child is
//! killed. A forked child, not a thread: a thread stuck in the kernel would
//! make the later `setns(CLONE_NEWNS)` fail.
//!
//! Sub-directories are created in the child beneath the mounted export with
//! openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV), owned by
//! the container's user; the container gets a clone of exactly that
//! directory (open_tree), so nothing outside the export can be reached.

use std::ffi::CString;
use std::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{fchmod, fchown, mkdirat, openat, unlinkat, AtFlags, Gid, Mode, OFlags, Uid, CWD};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, FsMountFlags,
    FsOpenFlags, MountAttrFlags,
};
use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::process::{kill_process, waitpid, Signal, WaitOptions};

use crate::apply::mount;
use crate::error::quote;
use crate::plan::NewDir;
use crate::{fd, sys};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ChildStep {
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

impl ChildStep {
    fn from_u8(b: u8) -> Option<ChildStep> {
        Some(match b {
            1 => ChildStep::Create,
            2 => ChildStep::Fsmount,
            3 => ChildStep::Unshare,
            4 => ChildStep::Private,
            5 => ChildStep::Attach,
            6 => ChildStep::Mkdir,
            7 => ChildStep::Open,
            8 => ChildStep::Owner,
            9 => ChildStep::Clone,
            _ => return None,
        })
    }

    pub fn what(self) -> &'static str {
        match self {
            ChildStep::Create => "fsconfig(FSCONFIG_CMD_CREATE)",
            ChildStep::Fsmount => "fsmount",
            ChildStep::Unshare => "unshare(CLONE_NEWNS) for the sub-directory",
            ChildStep::Private => "making the helper's mounts private",
            ChildStep::Attach => "move_mount of the export in the helper",
            ChildStep::Mkdir => "creating the sub-directory",
            ChildStep::Open => "opening the sub-directory beneath the export",
            ChildStep::Owner => "setting the owner and mode of the new sub-directory",
            ChildStep::Clone => "open_tree of the sub-directory",
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
        stage: ChildStep,
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
) -> Result<(OwnedFd, bool), (ChildStep, Errno)> {
    fsconfig_create(fsfd).map_err(|e| (ChildStep::Create, e))?;
    let mnt = fsmount(fsfd, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| (ChildStep::Fsmount, e))?;
    if subdir.is_empty() {
        return Ok((mnt, false));
    }
    // open_tree(OPEN_TREE_CLONE) needs a mount attached in our namespace:
    // attach the export in a private copy of it, which dies with the child.
    sys::unshare_mount_ns().map_err(|e| (ChildStep::Unshare, errno_of(&e)))?;
    let root = openat(
        CWD,
        c"/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| (ChildStep::Private, e))?;
    sys::mount_setattr(
        root.as_fd(),
        sys::SetAttr {
            propagation: sys::MS_PRIVATE,
            ..Default::default()
        },
    )
    .map_err(|e| (ChildStep::Private, errno_of(&e)))?;
    mount::attach(&mnt, root.as_fd()).map_err(|e| (ChildStep::Attach, errno_of(&e)))?;
    let mut cur = mnt;
    let mut created = false;
    for name in subdir {
        let made = match mkdirat(&cur, name.as_c_str(), Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err((ChildStep::Mkdir, e)),
        };
        let next =
            fd::open_dir_beneath(cur.as_fd(), name.as_c_str()).map_err(|e| (ChildStep::Open, e))?;
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
                return Err((ChildStep::Owner, e));
            }
        }
        cur = next;
    }
    let tree = mount::clone_tree(cur.as_fd()).map_err(|e| (ChildStep::Clone, errno_of(&e)))?;
    Ok((tree, created))
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_io_error(e).unwrap_or(Errno::INVAL)
}

#[derive(Debug)]
pub enum ChildError {
    TimedOut,
    Failed(ChildStep, Errno),
    Io(&'static str, std::io::Error),
}

/// Run `job` in a forked child and receive the fd it returns, or kill it at
/// `deadline`. The reply is 6 bytes: result (0 ok, else the stage), the
/// "created" flag, the errno (little-endian); the fd travels as SCM_RIGHTS.
pub fn in_child<F>(deadline: Instant, job: F) -> Result<(OwnedFd, bool), ChildError>
where
    F: FnOnce(BorrowedFd<'_>) -> Result<(OwnedFd, bool), (ChildStep, Errno)>,
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
    match (ChildStep::from_u8(msg[0]), fd) {
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

    #[test]
    fn the_deadline_kills_a_stuck_child() {
        let t = Instant::now();
        let r = in_child(t + Duration::from_millis(300), |_| {
            let _ = rustix::thread::nanosleep(&rustix::event::Timespec {
                tv_sec: 30,
                tv_nsec: 0,
            });
            Err((ChildStep::Create, Errno::INVAL))
        });
        assert!(matches!(r, Err(ChildError::TimedOut)), "{r:?}");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(1300),
            "{took:?}"
        );
        // A failure is reported with its stage and errno, at once.
        let r = in_child(Instant::now() + Duration::from_secs(5), |_| {
            Err((ChildStep::Mkdir, Errno::ACCESS))
        });
        assert!(
            matches!(r, Err(ChildError::Failed(ChildStep::Mkdir, Errno::ACCESS))),
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
}

/// Host micro-benchmark of what the hook adds around a mount (fork, socket,
/// fd passing, reap): `cargo test --release nfs::child::bench -- --ignored --nocapture`.
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
