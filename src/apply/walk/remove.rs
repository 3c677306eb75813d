//! Deleting a volume's content with the walker, race-free:
//!
//! 1. the parallel walk ([`super::walk`]) with a deletion visitor unlinks
//!    every non-directory (`unlinkat` relative to its parent's fd; a symlink
//!    is removed, never followed; a mount point is skipped, never entered);
//! 2. a post-order pass removes the directories, each after its content,
//!    with `unlinkat(parent, name, AT_REMOVEDIR)`: it descends with
//!    openat2 RESOLVE_BENEATH | NO_SYMLINKS | NO_XDEV and climbs back by
//!    `..`, checked against the identity recorded on the way down, so one
//!    directory fd is open at a time whatever the depth, and a directory
//!    moved meanwhile stops the pass instead of leading it elsewhere.
//!
//! What cannot go (a mount point, a directory holding one, an entry added
//! while it ran) is left and counted; the root itself is never removed here.

use std::collections::HashSet;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{fstat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{Entry, Visitor, WalkError};

/// What [`remove_contents`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Entries removed (files, links, directories).
    pub entries: u64,
    /// Bytes freed: blocks of removed inodes that had no other link.
    pub bytes: u64,
    /// Mount points (and the directories above them) left in place.
    pub mounts_skipped: u64,
    /// Entries left for another reason (added meanwhile, not empty).
    pub left: u64,
}

struct Unlink {
    entries: AtomicU64,
    bytes: AtomicU64,
}

impl Visitor for Unlink {
    fn visit(&self, e: &Entry<'_>) -> io::Result<()> {
        if e.kind == FileType::Directory {
            return Ok(());
        }
        let st = statat(e.dir, e.name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            // Replaced by a directory since it was listed: pass 2's.
            return Ok(());
        }
        unlinkat(e.dir, e.name, AtFlags::empty())?;
        self.entries.fetch_add(1, Ordering::Relaxed);
        if st.st_nlink <= 1 {
            self.bytes
                .fetch_add(st.st_blocks as u64 * 512, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Remove everything below the directory `root` (whose real path is
/// `root_path`), never following a symlink, never entering another mount.
pub fn remove_contents(
    root: &OwnedFd,
    root_path: &Path,
    threads: usize,
) -> Result<Removed, WalkError> {
    let unlink = Unlink {
        entries: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
    };
    let stats = super::walk(root, root_path, threads, &unlink)?;
    let mut out = Removed {
        entries: unlink.entries.into_inner(),
        bytes: unlink.bytes.into_inner(),
        mounts_skipped: stats.mounts_skipped,
        left: 0,
    };
    remove_dirs(root.as_fd(), &mut out)?;
    Ok(out)
}

/// One directory on the way down: its name in its parent, its identity,
/// and the sub-directories still to visit.
struct Level {
    name: CString,
    id: (u64, u64),
    pending: Vec<CString>,
}

fn werr(path: PathBuf, e: Errno) -> WalkError {
    WalkError {
        path,
        source: e.into(),
    }
}

fn rel(stack: &[Level]) -> PathBuf {
    stack
        .iter()
        .map(|l| l.name.to_string_lossy().into_owned())
        .collect()
}

fn open_sub(dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> rustix::io::Result<OwnedFd> {
    crate::fd::open_dir_beneath(dir, name)
}

/// Read `dir`: unlink the non-directories found (pass 1 missed them only
/// if they appeared since), return the sub-directories not in `keep`.
fn scan(
    dir: &OwnedFd,
    keep: &HashSet<(u64, u64)>,
    out: &mut Removed,
) -> rustix::io::Result<Vec<CString>> {
    let dup = rustix::io::fcntl_dupfd_cloexec(dir, 0)?;
    let mut d = Dir::new(dup)?;
    let mut subdirs = Vec::new();
    while let Some(entry) = d.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            if !keep.contains(&(st.st_dev, st.st_ino)) {
                subdirs.push(name.to_owned());
            }
            continue;
        }
        match unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) => {
                out.entries += 1;
                if st.st_nlink <= 1 {
                    out.bytes += st.st_blocks as u64 * 512;
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(subdirs)
}

/// Pass 2: the directories, post-order, one fd open at a time.
fn remove_dirs(root: BorrowedFd<'_>, out: &mut Removed) -> Result<(), WalkError> {
    let top = open_sub(root, c".").map_err(|e| werr(".".into(), e))?;
    let top_st = fstat(&top).map_err(|e| werr(".".into(), e))?;
    let mut keep: HashSet<(u64, u64)> = HashSet::new();
    let mut cur = top;
    let mut stack: Vec<Level> = Vec::new();
    let mut pending = scan(&cur, &keep, out).map_err(|e| werr(".".into(), e))?;
    loop {
        if let Some(name) = pending.pop() {
            match open_sub(cur.as_fd(), &name) {
                Ok(fd) => {
                    let cur_st = fstat(&cur).map_err(|e| werr(rel(&stack), e))?;
                    stack.push(Level {
                        name,
                        id: (cur_st.st_dev, cur_st.st_ino),
                        pending: std::mem::take(&mut pending),
                    });
                    cur = fd;
                    pending = scan(&cur, &keep, out).map_err(|e| werr(rel(&stack), e))?;
                }
                // A mount point (or a directory on another file system):
                // not ours, left with everything above it.
                Err(Errno::XDEV) => {
                    out.mounts_skipped += 1;
                    if let Ok(st) = statat(&cur, &name, AtFlags::SYMLINK_NOFOLLOW) {
                        keep.insert((st.st_dev, st.st_ino));
                    }
                }
                Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => {}
                Err(e) => return Err(werr(rel(&stack).join(name.to_string_lossy().as_ref()), e)),
            }
            continue;
        }
        // `cur` has nothing left to visit: climb and remove it.
        let Some(level) = stack.pop() else {
            break;
        };
        let cur_st = fstat(&cur).map_err(|e| werr(rel(&stack), e))?;
        let parent = rustix::fs::openat(
            &cur,
            c"..",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| werr(rel(&stack), e))?;
        let pst = fstat(&parent).map_err(|e| werr(rel(&stack), e))?;
        if (pst.st_dev, pst.st_ino) != level.id {
            // Moved while we were inside: stop rather than follow it.
            return Err(werr(
                rel(&stack).join(level.name.to_string_lossy().as_ref()),
                Errno::STALE,
            ));
        }
        match unlinkat(&parent, &level.name, AtFlags::REMOVEDIR) {
            Ok(()) => {
                out.entries += 1;
                out.bytes += cur_st.st_blocks as u64 * 512;
            }
            Err(Errno::NOTEMPTY) | Err(Errno::EXIST) | Err(Errno::BUSY) => {
                out.left += 1;
                keep.insert((cur_st.st_dev, cur_st.st_ino));
            }
            Err(Errno::NOENT) => {}
            Err(e) => {
                return Err(werr(
                    rel(&stack).join(level.name.to_string_lossy().as_ref()),
                    e,
                ))
            }
        }
        cur = parent;
        pending = level.pending;
    }
    // Back at the top: it must be the root we started from.
    let st = fstat(&cur).map_err(|e| werr(".".into(), e))?;
    if (st.st_dev, st.st_ino) != (top_st.st_dev, top_st.st_ino) {
        return Err(werr(".".into(), Errno::STALE));
    }
    Ok(())
}
