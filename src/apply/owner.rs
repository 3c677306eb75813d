//! Option `U`: give a volume's files to the container's user.
//!
//! A recursive, parallel walk ([`crate::apply::walk`]: never through a symlink,
//! never into another mount) that `fchownat`s every entry with
//! `AT_SYMLINK_NOFOLLOW` from its parent directory's fd, and the volume's
//! root directory last.
//!
//! Refused on a [`Protected`] directory (a system path, the hook's own
//! directories, or an alias of one). A file with more than one hard link is
//! changed only when the walk saw all its links ([`walk::Links`]), through
//! an `O_PATH` fd checked against the stat; the others are left as they are
//! and counted ([`OwnerOutcome::hardlinks_skipped`]).
//!
//! Restarts are O(1) with policy `on-root-mismatch`: a finished walk leaves
//! the xattr [`MARKER`] = `"uid:gid"` on the root. The marker is removed
//! before a walk starts and written only after the root itself was changed,
//! so a hook killed mid-walk leaves a volume that the next start walks again.
//! The skip costs one fstat and one fgetxattr.
#![forbid(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use log::{debug, warn};
use rustix::fs::{
    chownat, fgetxattr, fremovexattr, fsetxattr, fstat, statat, AtFlags, FileType, Gid, Uid,
    XattrFlags,
};
use rustix::io::Errno;

use crate::apply::walk::{self, Entry, Links, Protected, Visitor};
use crate::apply::ApplyError;
use crate::config::OwnerChange;
use crate::plan::OwnerPlan;

/// The completion marker on a volume's root: `"uid:gid"` of the last
/// finished walk.
pub const MARKER: &str = "trusted.oci-volume-hook.owner";

/// The marker's value for a target owner.
pub fn marker_value(uid: u32, gid: u32) -> String {
    format!("{uid}:{gid}")
}

/// What the volume root's marker xattr says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// Present, with this value.
    Set(Vec<u8>),
    /// Not set: no walk finished since the last one started (or ever).
    Absent,
    /// The file system does not support `trusted.*` xattrs.
    Unsupported,
}

/// Whether to walk, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerDecision {
    /// The root has the target owner and a finished walk's marker for it.
    Skip,
    Walk(WalkReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkReason {
    /// owner_change = always.
    Always,
    /// The root belongs to someone else.
    RootMismatch { uid: u32, gid: u32 },
    /// The root has the target owner but no finished walk is recorded
    /// (new volume, a walk that was interrupted, or a chown by hand).
    NoMarker,
    /// The last finished walk was for another owner.
    OtherMarker(String),
    /// No xattrs here: nothing can prove a walk finished.
    MarkerUnsupported,
}

impl std::fmt::Display for WalkReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalkReason::Always => write!(f, "owner_change = always"),
            WalkReason::RootMismatch { uid, gid } => {
                write!(f, "the volume root belongs to {uid}:{gid}")
            }
            WalkReason::NoMarker => write!(
                f,
                "no finished ownership change is recorded on the root (new, interrupted or changed by hand)"
            ),
            WalkReason::OtherMarker(m) => write!(f, "the last ownership change was to {m}"),
            WalkReason::MarkerUnsupported => write!(
                f,
                "the file system has no trusted.* xattrs, so a finished change cannot be recorded"
            ),
        }
    }
}

/// Decide from the root's owner and marker whether a walk is needed. Pure.
pub fn decide(plan: &OwnerPlan, root_owner: (u32, u32), marker: &Marker) -> OwnerDecision {
    if plan.policy == OwnerChange::Always {
        return OwnerDecision::Walk(WalkReason::Always);
    }
    if root_owner != (plan.uid, plan.gid) {
        return OwnerDecision::Walk(WalkReason::RootMismatch {
            uid: root_owner.0,
            gid: root_owner.1,
        });
    }
    match marker {
        Marker::Set(v) if v.as_slice() == marker_value(plan.uid, plan.gid).as_bytes() => {
            OwnerDecision::Skip
        }
        Marker::Set(v) => OwnerDecision::Walk(WalkReason::OtherMarker(
            String::from_utf8_lossy(v).into_owned(),
        )),
        Marker::Absent => OwnerDecision::Walk(WalkReason::NoMarker),
        Marker::Unsupported => OwnerDecision::Walk(WalkReason::MarkerUnsupported),
    }
}

/// Workers for an ownership walk: twice the CPUs (at least 4, at most 16).
/// A chown dirties an inode and may wait on the file system's journal, so
/// more workers than CPUs keep the CPUs busy (measured in bench/owner.sh).
pub fn default_threads() -> usize {
    (walk::default_threads() * 2).clamp(4, 16)
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerOutcome {
    pub decision: OwnerDecision,
    /// Entries visited (root excluded), when walked.
    pub entries: u64,
    /// Entries whose owner was changed (root included).
    pub changed: u64,
    pub mounts_skipped: u64,
    /// Files with hard links outside the volume (not all links seen in
    /// the walk): left unchanged.
    pub hardlinks_skipped: u64,
    /// Entries that vanished during the walk (skipped).
    pub vanished: u64,
    pub elapsed: Duration,
}

/// Give the volume opened at `fd` (an `O_PATH` fd is fine; `path` is for
/// messages and mountinfo) to `plan`'s owner, walking it when [`decide`]
/// says so; never a `protected` directory. Errors have an empty subject:
/// the caller names the volume.
pub fn apply(
    fd: BorrowedFd<'_>,
    path: &Path,
    plan: &OwnerPlan,
    threads: usize,
    protected: &Protected,
) -> Result<OwnerOutcome, ApplyError> {
    let start = Instant::now();
    let real = crate::fd::real_path(fd)
        .map_err(|e| ApplyError::sys("option U: reading the path of the volume", e))?;
    let st = fstat(fd).map_err(|e| fail("fstat", &real, e))?;
    let owner = (st.st_uid, st.st_gid);
    let target = (plan.uid, plan.gid);
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {}
        FileType::RegularFile => {
            // A file volume: one chown, no walk, no marker.
            refuse_system_file(&real, protected)?;
            let mut changed = 0;
            if owner != target {
                chownat(
                    fd,
                    "",
                    Some(Uid::from_raw(plan.uid)),
                    Some(Gid::from_raw(plan.gid)),
                    AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| fail("chown", &real, e))?;
                changed = 1;
            }
            return Ok(OwnerOutcome {
                decision: OwnerDecision::Walk(WalkReason::Always),
                entries: 0,
                changed,
                mounts_skipped: 0,
                hardlinks_skipped: 0,
                vanished: 0,
                elapsed: start.elapsed(),
            });
        }
        other => {
            return Err(ApplyError::unusable(format!(
                "option U: {} is a {other:?}, not a directory or regular file",
                real.display()
            )))
        }
    }
    if let Some(why) = protected.refuses(fd, &real) {
        return Err(refuse_system(&real, &why));
    }
    // xattrs need a real (not O_PATH) descriptor of the directory itself.
    let root = crate::fd::open_dir_beneath(fd, c".").map_err(|e| fail("open", &real, e))?;
    let marker =
        read_marker(root.as_fd()).map_err(|e| fail("read the marker xattr of", &real, e))?;
    let decision = decide(plan, owner, &marker);
    let mut outcome = OwnerOutcome {
        decision: decision.clone(),
        entries: 0,
        changed: 0,
        mounts_skipped: 0,
        hardlinks_skipped: 0,
        vanished: 0,
        elapsed: Duration::ZERO,
    };
    if decision == OwnerDecision::Skip {
        outcome.elapsed = start.elapsed();
        return Ok(outcome);
    }
    if marker == Marker::Unsupported {
        debug!(
            "{}: no trusted.* xattrs on this file system: option U walks the volume on every start",
            real.display()
        );
    }
    // From here on the volume counts as unfinished until the marker is back.
    match fremovexattr(&root, MARKER) {
        Ok(()) | Err(Errno::NODATA) | Err(Errno::NOTSUP) => {}
        Err(e) => return Err(fail("remove the marker xattr of", &real, e)),
    }
    let visitor = Chown {
        uid: plan.uid,
        gid: plan.gid,
        changed: AtomicU64::new(0),
        links: Links::default(),
    };
    let stats = walk::walk(&root, &real, threads, &visitor).map_err(|e| {
        let at = real.join(&e.path);
        let errno = e.source.raw_os_error().map(Errno::from_raw_os_error);
        fail("change the owner of", &at, errno.unwrap_or(Errno::IO)).hint(hint_for(errno))
    })?;
    // The root last: a root with the target owner and a marker means done.
    if owner != target {
        chownat(
            &root,
            "",
            Some(Uid::from_raw(plan.uid)),
            Some(Gid::from_raw(plan.gid)),
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| fail("chown", &real, e))?;
        visitor.changed.fetch_add(1, Ordering::Relaxed);
    }
    if marker != Marker::Unsupported {
        let value = marker_value(plan.uid, plan.gid);
        match fsetxattr(&root, MARKER, value.as_bytes(), XattrFlags::empty()) {
            Ok(()) => {}
            Err(Errno::NOTSUP) => debug!(
                "{}: cannot record the finished walk (no trusted.* xattrs)",
                real.display()
            ),
            Err(e) => return Err(fail("set the marker xattr on", &real, e)),
        }
    }
    outcome.entries = stats.entries;
    outcome.mounts_skipped = stats.mounts_skipped;
    outcome.vanished = stats.vanished;
    outcome.hardlinks_skipped = visitor.links.left();
    outcome.changed = visitor.changed.into_inner();
    outcome.elapsed = start.elapsed();
    if outcome.hardlinks_skipped > 0 {
        warn!(
            "{}: option U: {} hardlinked files with links outside the volume left unchanged",
            real.display(),
            outcome.hardlinks_skipped
        );
    }
    debug!(
        "{} (opened as {}): owner {}:{}: {} entries, {} changed, {} mounts skipped, {} hardlinked files skipped, {} vanished during the walk, {:?}",
        real.display(),
        path.display(),
        plan.uid,
        plan.gid,
        outcome.entries,
        outcome.changed,
        outcome.mounts_skipped,
        outcome.hardlinks_skipped,
        outcome.vanished,
        outcome.elapsed
    );
    Ok(outcome)
}

struct Chown {
    uid: u32,
    gid: u32,
    changed: AtomicU64,
    links: Links,
}

impl Visitor for Chown {
    fn visit(&self, e: &Entry<'_>) -> std::io::Result<()> {
        // Stat first: entries that already have the owner keep their ctime
        // and set-id bits, and a resumed walk costs little.
        let st = statat(e.dir, e.name, AtFlags::SYMLINK_NOFOLLOW)?;
        if (st.st_uid, st.st_gid) == (self.uid, self.gid) {
            return Ok(());
        }
        if st.st_nlink > 1 && e.kind != FileType::Directory {
            return self.hardlinked(e);
        }
        chownat(
            e.dir,
            e.name,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        self.changed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Chown {
    /// A file with several links: counted, and changed (through an O_PATH
    /// fd of the very inode counted) only at the sighting of its last link.
    fn hardlinked(&self, e: &Entry<'_>) -> std::io::Result<()> {
        let fd = crate::fd::open_beneath(e.dir, e.name, rustix::fs::OFlags::PATH)?;
        let st = fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory
            || !self.links.all_seen(st.st_dev, st.st_ino, st.st_nlink)
        {
            return Ok(());
        }
        chownat(
            &fd,
            "",
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        )?;
        self.changed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn read_marker(fd: BorrowedFd<'_>) -> Result<Marker, Errno> {
    let mut buf = [0u8; 64];
    match fgetxattr(fd, MARKER, &mut buf[..]) {
        Ok(n) => Ok(Marker::Set(buf[..n].to_vec())),
        Err(Errno::NODATA) => Ok(Marker::Absent),
        Err(Errno::NOTSUP) => Ok(Marker::Unsupported),
        // Longer than any value we write: not ours to trust.
        Err(Errno::RANGE) => Ok(Marker::Set(b"(too long)".to_vec())),
        Err(e) => Err(e),
    }
}

/// What `check` shows: the root's owner and marker, read without changing
/// anything (and without following a symlink at `path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub owner: (u32, u32),
    pub marker: Marker,
    pub decision: OwnerDecision,
}

pub fn inspect(path: &Path, plan: &OwnerPlan) -> Result<Inspection, Errno> {
    let st = statat(rustix::fs::CWD, path, AtFlags::SYMLINK_NOFOLLOW)?;
    let owner = (st.st_uid, st.st_gid);
    let marker = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let mut buf = [0u8; 64];
        match rustix::fs::lgetxattr(path, MARKER, &mut buf[..]) {
            Ok(n) => Marker::Set(buf[..n].to_vec()),
            Err(Errno::NODATA) => Marker::Absent,
            Err(Errno::NOTSUP) => Marker::Unsupported,
            Err(e) => return Err(e),
        }
    } else {
        Marker::Unsupported
    };
    let decision = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        decide(plan, owner, &marker)
    } else if owner == (plan.uid, plan.gid) {
        OwnerDecision::Skip
    } else {
        OwnerDecision::Walk(WalkReason::RootMismatch {
            uid: owner.0,
            gid: owner.1,
        })
    };
    Ok(Inspection {
        owner,
        marker,
        decision,
    })
}

fn fail(what: &str, path: &Path, e: Errno) -> ApplyError {
    ApplyError::sys(format!("option U: {what} {}", path.display()), e)
}

fn hint_for(errno: Option<Errno>) -> &'static str {
    match errno {
        Some(Errno::ROFS) => "the volume's file system is read-only on the host; drop option U",
        Some(Errno::PERM) | Some(Errno::ACCESS) => {
            "the file system refused the change (immutable file, or a network file system that does not let root chown); fix it on the host or drop option U"
        }
        _ => "fix the volume on the host, or drop option U",
    }
}

fn refuse_system(path: &Path, why: &str) -> ApplyError {
    ApplyError::invalid(format!(
        "option U: refusing to change the owner of {} recursively: {why}",
        path.display()
    ))
    .hint("use a dedicated directory as the volume, or drop option U")
}

/// A file volume directly in a protected directory (`/etc/passwd`, or a
/// file in an alias of /etc) is refused too.
fn refuse_system_file(path: &Path, protected: &Protected) -> Result<(), ApplyError> {
    for p in [Some(path), path.parent()].into_iter().flatten() {
        if let Some(why) = protected.refuses_dir_path(p) {
            return Err(ApplyError::invalid(format!(
                "option U: refusing to change the owner of {}: {why}",
                path.display()
            ))
            .hint("use a file in a dedicated directory, or drop option U"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(policy: OwnerChange) -> OwnerPlan {
        OwnerPlan {
            uid: 1000,
            gid: 100,
            policy,
        }
    }

    #[test]
    fn skip_only_when_root_owner_and_marker_both_match() {
        let p = plan(OwnerChange::OnRootMismatch);
        let done = Marker::Set(b"1000:100".to_vec());
        assert_eq!(decide(&p, (1000, 100), &done), OwnerDecision::Skip);
        assert_eq!(
            decide(&p, (0, 0), &done),
            OwnerDecision::Walk(WalkReason::RootMismatch { uid: 0, gid: 0 })
        );
        assert_eq!(
            decide(&p, (1000, 0), &done),
            OwnerDecision::Walk(WalkReason::RootMismatch { uid: 1000, gid: 0 })
        );
        // An interrupted walk removed the marker first: walk again even
        // though the root (changed last, or by hand) looks right.
        assert_eq!(
            decide(&p, (1000, 100), &Marker::Absent),
            OwnerDecision::Walk(WalkReason::NoMarker)
        );
        assert_eq!(
            decide(&p, (1000, 100), &Marker::Set(b"1000:1000".to_vec())),
            OwnerDecision::Walk(WalkReason::OtherMarker("1000:1000".into()))
        );
        assert_eq!(
            decide(&p, (1000, 100), &Marker::Unsupported),
            OwnerDecision::Walk(WalkReason::MarkerUnsupported)
        );
    }

    #[test]
    fn always_walks() {
        let p = plan(OwnerChange::Always);
        assert_eq!(
            decide(&p, (1000, 100), &Marker::Set(b"1000:100".to_vec())),
            OwnerDecision::Walk(WalkReason::Always)
        );
    }

    #[test]
    fn marker_format_and_reasons_read_well() {
        assert_eq!(marker_value(101000, 101000), "101000:101000");
        let r = WalkReason::RootMismatch { uid: 0, gid: 0 }.to_string();
        assert_eq!(r, "the volume root belongs to 0:0");
    }

    #[test]
    fn system_volumes_are_refused_with_a_hint() {
        let e = refuse_system(Path::new("/usr"), "/usr is a system path");
        assert!(matches!(e, ApplyError::Invalid { .. }), "{e:?}");
        assert_eq!(e.into_hook("volume \"/usr:/u:U\"").exit_code(), 2);
        let e = refuse_system(Path::new("/usr"), "/usr is a system path");
        assert!(e.to_string().contains("refusing"), "{e}");
        let p = Protected::new(&[]);
        assert!(refuse_system_file(Path::new("/etc/passwd"), &p).is_err());
        assert!(refuse_system_file(Path::new("/srv/app/x.conf"), &p).is_ok());
    }
}
