//! A parallel, symlink-safe, mount-bounded walk of a volume, for relabelling
//! and ownership changes.
//!
//! - Never follows a symlink: directories are opened with openat2
//!   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS from their parent's fd; visitors
//!   act on entries with *at / l* calls.
//! - Never crosses into another mount: directories are opened with
//!   RESOLVE_NO_XDEV (which also stops at bind mounts of the same file
//!   system), and mount points found in /proc/self/mountinfo under the
//!   volume are skipped before they are visited.
//! - Parallel: worker threads share a LIFO stack of directories (depth-first
//!   keeps few directories open). Each worker unshares its fs_struct and
//!   `fchdir`s into the directory it reads, so path-based l* calls on a bare
//!   entry name resolve in that directory and nowhere else.
//!
//! The root itself is not visited: callers decide when (ownership changes
//! visit it last, so an interrupted walk is seen as unfinished).

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use rustix::fs::{Dir, FileType};

/// What a visitor is told about one entry. The calling thread's working
/// directory is `dir`, so `name` can be passed to path-based l* calls.
pub struct Entry<'a> {
    pub dir: BorrowedFd<'a>,
    pub name: &'a CStr,
    /// From the directory entry (no stat). No visitor needs it yet; the
    /// walk's tests check it, and the hardlink rule will read it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub kind: FileType,
}

pub trait Visitor: Sync {
    fn visit(&self, entry: &Entry<'_>) -> io::Result<()>;
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    pub directories: u64,
    pub mounts_skipped: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct WalkError {
    /// Relative to the volume root.
    pub path: PathBuf,
    pub source: io::Error,
}

/// Paths no one may relabel or chown recursively (as go-selinux refuses).
const SYSTEM_PATHS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/etc/X11",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/include",
    "/usr/lib",
    "/usr/libexec",
    "/usr/local",
    "/usr/sbin",
    "/usr/share",
    "/usr/src",
    "/var",
    "/var/cache",
    "/var/lib",
    "/var/lib/containers",
    "/var/log",
    "/var/spool",
    "/var/tmp",
];

/// `Some(reason)` when `path` (resolved) is a system path or a home directory.
pub fn system_path(path: &Path) -> Option<String> {
    if SYSTEM_PATHS.iter().any(|p| Path::new(p) == path) {
        return Some(format!("{} is a system path", path.display()));
    }
    if path.parent() == Some(Path::new("/home")) {
        return Some(format!("{} is a home directory", path.display()));
    }
    None
}

struct Job {
    parent: Arc<Dir>,
    name: CString,
    rel: PathBuf,
}

struct Shared<'v, V: ?Sized> {
    visitor: &'v V,
    stack: Mutex<(Vec<Job>, usize)>, // (jobs, busy workers)
    ready: Condvar,
    failed: Mutex<Option<WalkError>>,
    skip: HashSet<PathBuf>,
    entries: AtomicU64,
    directories: AtomicU64,
    mounts_skipped: AtomicU64,
}

/// Walk everything below `root` (an fd of the volume's root directory,
/// whose real path is `root_path`) with `threads` workers.
pub fn walk<V: Visitor + ?Sized>(
    root: &OwnedFd,
    root_path: &Path,
    threads: usize,
    visitor: &V,
) -> Result<Stats, WalkError> {
    let shared = Shared {
        visitor,
        stack: Mutex::new((Vec::new(), 0)),
        ready: Condvar::new(),
        failed: Mutex::new(None),
        skip: mounts_below(root_path),
        entries: AtomicU64::new(0),
        directories: AtomicU64::new(0),
        mounts_skipped: AtomicU64::new(0),
    };
    let top = open_dir(root.as_fd(), c".").map_err(|source| WalkError {
        path: ".".into(),
        source,
    })?;
    let threads = threads.clamp(1, 64);
    std::thread::scope(|s| {
        let shared = &shared;
        // The root directory is read by the first worker.
        shared.stack.lock().unwrap_or_else(|e| e.into_inner()).1 = 1;
        let mut top = Some(top);
        for _ in 0..threads {
            let first = top.take();
            s.spawn(move || worker(shared, first));
        }
    });
    if let Some(e) = shared
        .failed
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
    {
        return Err(e);
    }
    Ok(Stats {
        entries: shared.entries.into_inner(),
        directories: shared.directories.into_inner(),
        mounts_skipped: shared.mounts_skipped.into_inner(),
    })
}

fn open_dir(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    Ok(crate::fd::open_dir_beneath(parent, name)?)
}

fn worker<V: Visitor + ?Sized>(shared: &Shared<'_, V>, first: Option<OwnedFd>) {
    if let Err(e) = crate::sys::unshare_fs() {
        fail(
            shared,
            WalkError {
                path: ".".into(),
                source: e,
            },
        );
    }
    if let Some(fd) = first {
        run_dir(shared, fd, PathBuf::new());
        finish_job(shared);
    }
    while let Some(job) = next_job(shared) {
        match open_dir(job.parent.fd().expect("Dir always has an fd"), &job.name) {
            Ok(fd) => run_dir(shared, fd, job.rel),
            // A mount point that mountinfo did not show (or a race): not ours.
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                shared.mounts_skipped.fetch_add(1, Ordering::Relaxed);
            }
            Err(source) => fail(
                shared,
                WalkError {
                    path: job.rel,
                    source,
                },
            ),
        }
        finish_job(shared);
    }
}

fn next_job<V: Visitor + ?Sized>(shared: &Shared<'_, V>) -> Option<Job> {
    let mut guard = shared.stack.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if shared.failed.lock().map(|f| f.is_some()).unwrap_or(true) {
            return None;
        }
        if let Some(job) = guard.0.pop() {
            guard.1 += 1;
            return Some(job);
        }
        if guard.1 == 0 {
            return None;
        }
        guard = shared.ready.wait(guard).unwrap_or_else(|e| e.into_inner());
    }
}

fn finish_job<V: Visitor + ?Sized>(shared: &Shared<'_, V>) {
    let mut guard = shared.stack.lock().unwrap_or_else(|e| e.into_inner());
    guard.1 -= 1;
    shared.ready.notify_all();
}

fn fail<V: Visitor + ?Sized>(shared: &Shared<'_, V>, e: WalkError) {
    if let Ok(mut f) = shared.failed.lock() {
        f.get_or_insert(e);
    }
    shared.ready.notify_all();
}

fn run_dir<V: Visitor + ?Sized>(shared: &Shared<'_, V>, fd: OwnedFd, rel: PathBuf) {
    if let Err(e) = read_dir(shared, fd, &rel) {
        fail(shared, e);
    }
}

fn read_dir<V: Visitor + ?Sized>(
    shared: &Shared<'_, V>,
    fd: OwnedFd,
    rel: &Path,
) -> Result<(), WalkError> {
    let err = |name: Option<&CStr>, source: io::Error| WalkError {
        path: match name {
            Some(n) => rel.join(n.to_string_lossy().as_ref()),
            None => rel.to_path_buf(),
        },
        source,
    };
    rustix::process::fchdir(&fd).map_err(|e| err(None, e.into()))?;
    shared.directories.fetch_add(1, Ordering::Relaxed);
    let mut dir = Dir::new(fd).map_err(|e| err(None, e.into()))?;
    let mut subdirs: Vec<CString> = Vec::new();
    let mut count = 0u64;
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(|e| err(None, e.into()))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        if !shared.skip.is_empty()
            && shared
                .skip
                .contains(&rel.join(name.to_string_lossy().as_ref()))
        {
            shared.mounts_skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let dirfd = dir.fd().map_err(|e| err(None, e.into()))?;
        let mut kind = entry.file_type();
        if kind == FileType::Unknown {
            let st = rustix::fs::statat(dirfd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| err(Some(name), e.into()))?;
            kind = FileType::from_raw_mode(st.st_mode);
        }
        shared
            .visitor
            .visit(&Entry {
                dir: dirfd,
                name,
                kind,
            })
            .map_err(|e| err(Some(name), e))?;
        count += 1;
        if kind == FileType::Directory {
            subdirs.push(name.to_owned());
        }
    }
    shared.entries.fetch_add(count, Ordering::Relaxed);
    if !subdirs.is_empty() {
        let parent = Arc::new(dir);
        let mut guard = shared.stack.lock().unwrap_or_else(|e| e.into_inner());
        for name in subdirs {
            let rel = rel.join(name.to_string_lossy().as_ref());
            guard.0.push(Job {
                parent: Arc::clone(&parent),
                name,
                rel,
            });
        }
        shared.ready.notify_all();
    }
    Ok(())
}

/// Mount points strictly below `root` (relative paths), from mountinfo.
fn mounts_below(root: &Path) -> HashSet<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return HashSet::new();
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter_map(|p| {
            PathBuf::from(p)
                .strip_prefix(root)
                .ok()
                .map(Path::to_path_buf)
        })
        .filter(|rel| !rel.as_os_str().is_empty())
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Workers to use: the CPUs this process may run on, at most 16.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::ffi::OsStrExt;

    struct Collect(Mutex<Vec<(PathBuf, FileType)>>);
    impl Visitor for Collect {
        fn visit(&self, e: &Entry<'_>) -> io::Result<()> {
            // The worker's cwd is the entry's directory: a bare-name lstat works.
            let st = rustix::fs::lstat(e.name)?;
            assert_eq!(FileType::from_raw_mode(st.st_mode), e.kind);
            let dir = crate::fd::real_path(e.dir)?;
            self.0.lock().unwrap().push((
                dir.join(std::ffi::OsStr::from_bytes(e.name.to_bytes())),
                e.kind,
            ));
            Ok(())
        }
    }

    fn open(p: &Path) -> OwnedFd {
        rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn visits_everything_once_and_never_follows_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        let r = t.path();
        for d in ["a/b/c", "a/d", "e"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for i in 0..50 {
            std::fs::write(r.join(format!("a/b/c/f{i}")), "").unwrap();
        }
        std::os::unix::fs::symlink(outside.path(), r.join("a/link-dir")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), r.join("e/link-file")).unwrap();
        for threads in [1, 2, 4] {
            let c = Collect(Mutex::new(Vec::new()));
            let stats = walk(&open(r), r, threads, &c).unwrap();
            let seen = c.0.into_inner().unwrap();
            assert_eq!(stats.entries as usize, seen.len());
            // 5 dirs + 50 files + 2 links
            assert_eq!(seen.len(), 57, "threads={threads}");
            assert_eq!(stats.directories, 6); // root + 5
            let unique: HashSet<_> = seen.iter().map(|s| s.0.clone()).collect();
            assert_eq!(unique.len(), 57);
            assert!(seen.iter().all(|(p, _)| p.starts_with(r)), "left the root");
            assert!(seen
                .iter()
                .any(|(p, k)| p.ends_with("a/link-dir") && *k == FileType::Symlink));
        }
    }

    #[test]
    fn first_error_stops_the_walk() {
        struct Fail;
        impl Visitor for Fail {
            fn visit(&self, e: &Entry<'_>) -> io::Result<()> {
                if e.name == c"bad" {
                    return Err(io::Error::from_raw_os_error(libc::EPERM));
                }
                Ok(())
            }
        }
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("x/y")).unwrap();
        std::fs::write(t.path().join("x/y/bad"), "").unwrap();
        let e = walk(&open(t.path()), t.path(), 2, &Fail).unwrap_err();
        assert_eq!(e.path, PathBuf::from("x/y/bad"));
    }

    #[test]
    fn system_paths() {
        for p in ["/", "/usr", "/etc", "/home", "/home/alice", "/var/lib"] {
            assert!(system_path(Path::new(p)).is_some(), "{p}");
        }
        for p in [
            "/srv/data",
            "/var/lib/oci-volume-hook/volumes/a",
            "/home/alice/data",
        ] {
            assert!(system_path(Path::new(p)).is_none(), "{p}");
        }
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo("/plain\\"), "/plain\\");
    }
}
