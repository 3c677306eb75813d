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
//! - Parallel: worker threads share a LIFO stack of directories. Each worker
//!   unshares its fs_struct and `fchdir`s into the directory it reads, so
//!   path-based l* calls on a bare entry name resolve in that directory and
//!   nowhere else.
//! - Bounded, whatever a co-tenant plants (a comb 12,000 directories deep):
//!   a pending directory is its name and a link to its parent, and at most
//!   a budget of directory fds stays open (older ones are re-opened, one
//!   checked component at a time, when needed). Entries that vanish during
//!   the walk are skipped and counted.
//!
//! Also here, for the visitors that change entries: [`Protected`] (the
//! directories no volume may be: system paths by identity, the hook's own
//! directories) and [`Links`] (a file with hard links is changed only when
//! the walk saw all of its links).
//!
//! The root itself is not visited: callers decide when (ownership changes
//! visit it last, so an interrupted walk is seen as unfinished).

mod links;
mod protected;
mod remove;
#[cfg(test)]
mod tests;

pub use links::Links;
pub use protected::Protected;
pub use remove::remove_contents;

use std::collections::{HashSet, VecDeque};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};

use rustix::fs::{Dir, FileType};

/// What a visitor is told about one entry. The calling thread's working
/// directory is `dir`, so `name` can be passed to path-based l* calls.
pub struct Entry<'a> {
    pub dir: BorrowedFd<'a>,
    pub name: &'a CStr,
    /// From the directory entry (no stat).
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
    /// Entries and directories that vanished during the walk (deleted,
    /// replaced): skipped.
    pub vanished: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct WalkError {
    /// Relative to the volume root.
    pub path: PathBuf,
    pub source: io::Error,
}

/// A directory that pending jobs still need: its name under its parent (the
/// chain up to the root is the relative path, O(1) per job) and, while the
/// fd budget allows, an open fd. An evicted fd is re-opened from the nearest
/// ancestor that still has one, one component at a time, each checked
/// against the (dev, ino) recorded here.
struct Node {
    up: Option<Arc<Node>>,
    name: CString,
    dev: u64,
    ino: u64,
    fd: Mutex<Option<Arc<OwnedFd>>>,
    /// Its relative path, only while it leads to a mount point to skip.
    toward_mount: Option<PathBuf>,
}

impl Drop for Node {
    /// Unlink the chain up to the root one node at a time: dropping the last
    /// job of a comb 12,000 directories deep would otherwise recurse once
    /// per level and overflow a worker thread's stack.
    fn drop(&mut self) {
        let mut up = self.up.take();
        while let Some(node) = up {
            match Arc::try_unwrap(node) {
                Ok(mut parent) => up = parent.up.take(),
                Err(_) => break,
            }
        }
    }
}

impl Node {
    fn fd(&self) -> Option<Arc<OwnedFd>> {
        self.fd.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The path relative to the volume root (for messages only: O(depth)).
    fn rel(&self) -> PathBuf {
        let mut names: Vec<&CStr> = Vec::new();
        let mut n = self;
        while let Some(up) = &n.up {
            names.push(&n.name);
            n = up;
        }
        names
            .iter()
            .rev()
            .map(|c| c.to_string_lossy().into_owned())
            .collect()
    }
}

fn rel_of(parent: &Node, name: &CStr) -> PathBuf {
    parent.rel().join(name.to_string_lossy().as_ref())
}

/// The open fds of [`Node`]s, oldest first (with a LIFO walk, the oldest
/// are the shallowest, needed last). Beyond the budget the oldest is closed.
struct FdCache {
    open: Mutex<VecDeque<Weak<Node>>>,
    budget: usize,
}

impl FdCache {
    fn new() -> Self {
        // A quarter of the fd limit, 16..=256: never near EMFILE, whatever
        // the depth (workers add one fd each, and a re-open a few more).
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1024);
        let budget = usize::try_from(limit / 4).unwrap_or(256).clamp(16, 256);
        FdCache {
            open: Mutex::new(VecDeque::new()),
            budget,
        }
    }

    /// Give `node` the fd `fd`, closing the oldest cached fd when over budget.
    fn keep(&self, node: &Arc<Node>, fd: Arc<OwnedFd>) {
        *node.fd.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.push_back(Arc::downgrade(node));
        if open.len() > self.budget {
            open.retain(|w| w.strong_count() > 0);
        }
        while open.len() > self.budget {
            if let Some(old) = open.pop_front().and_then(|w| w.upgrade()) {
                old.fd.lock().unwrap_or_else(|e| e.into_inner()).take();
            }
        }
    }

    /// An fd of `node`: its own, or re-opened from the nearest ancestor
    /// that has one (the root always has). On the way down the target and
    /// the ancestors at distances 1, 2, 4, 8 … are kept, so that climbing
    /// back up a deep tree costs O(log depth) opens per level, not O(depth).
    fn fd_of(&self, node: &Arc<Node>) -> io::Result<Arc<OwnedFd>> {
        if let Some(fd) = node.fd() {
            return Ok(fd);
        }
        let mut chain: Vec<&Arc<Node>> = vec![node];
        let mut fd = loop {
            let up = chain[chain.len() - 1]
                .up
                .as_ref()
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
            match up.fd() {
                Some(fd) => break fd,
                None => chain.push(up),
            }
        };
        for (distance, n) in chain.iter().enumerate().rev() {
            let next = Arc::new(open_dir(fd.as_fd(), &n.name)?);
            let st = rustix::fs::fstat(&next)?;
            if (st.st_dev, st.st_ino) != (n.dev, n.ino) {
                // Replaced (renamed over) since it was read: not ours to enter.
                return Err(io::Error::from_raw_os_error(libc::ESTALE));
            }
            if distance == 0 || distance.is_power_of_two() {
                self.keep(n, Arc::clone(&next));
            }
            fd = next;
        }
        Ok(fd)
    }
}

struct Job {
    parent: Arc<Node>,
    name: CString,
}

struct Shared<'v, V: ?Sized> {
    visitor: &'v V,
    stack: Mutex<(Vec<Job>, usize)>, // (jobs, busy workers)
    ready: Condvar,
    failed: Mutex<Option<WalkError>>,
    /// Mount points below the root, and the directories leading to them.
    skip: HashSet<PathBuf>,
    toward: HashSet<PathBuf>,
    root: Arc<Node>,
    fds: FdCache,
    entries: AtomicU64,
    directories: AtomicU64,
    mounts_skipped: AtomicU64,
    vanished: AtomicU64,
}

/// Walk everything below `root` (an fd of the volume's root directory,
/// whose real path is `root_path`) with `threads` workers.
///
/// Memory and fds stay bounded whatever the tree: a pending directory
/// costs its name and a link to its parent, and at most [`FdCache`]'s
/// budget of directory fds stays open. Entries and directories that vanish
/// during the walk (ENOENT, ENOTDIR, or a directory renamed over) are
/// skipped and counted in [`Stats::vanished`].
pub fn walk<V: Visitor + ?Sized>(
    root: &OwnedFd,
    root_path: &Path,
    threads: usize,
    visitor: &V,
) -> Result<Stats, WalkError> {
    let root_err = |source: io::Error| WalkError {
        path: ".".into(),
        source,
    };
    let top = open_dir(root.as_fd(), c".").map_err(root_err)?;
    let st = rustix::fs::fstat(&top).map_err(|e| root_err(e.into()))?;
    let kept = rustix::io::fcntl_dupfd_cloexec(&top, 0).map_err(|e| root_err(e.into()))?;
    let skip = mounts_below(root_path);
    let toward: HashSet<PathBuf> = skip
        .iter()
        .flat_map(|p| p.ancestors().skip(1).map(Path::to_path_buf))
        .collect();
    let shared = Shared {
        visitor,
        stack: Mutex::new((Vec::new(), 0)),
        ready: Condvar::new(),
        failed: Mutex::new(None),
        root: Arc::new(Node {
            up: None,
            name: c".".to_owned(),
            dev: st.st_dev,
            ino: st.st_ino,
            // The root's fd is never evicted (it is not in the cache).
            fd: Mutex::new(Some(Arc::new(kept))),
            toward_mount: (!skip.is_empty()).then(PathBuf::new),
        }),
        skip,
        toward,
        fds: FdCache::new(),
        entries: AtomicU64::new(0),
        directories: AtomicU64::new(0),
        mounts_skipped: AtomicU64::new(0),
        vanished: AtomicU64::new(0),
    };
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
        vanished: shared.vanished.into_inner(),
    })
}

fn open_dir(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    Ok(crate::fd::open_dir_beneath(parent, name)?)
}

/// An entry gone since it was listed: skipped, not an error.
fn vanished(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ESTALE)
    )
}

/// Where the directory being read is.
enum Here {
    Root,
    Sub { parent: Arc<Node>, name: CString },
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
        run_dir(shared, fd, Here::Root);
        finish_job(shared);
    }
    while let Some(job) = next_job(shared) {
        let opened = shared
            .fds
            .fd_of(&job.parent)
            .and_then(|parent| open_dir(parent.as_fd(), &job.name));
        match opened {
            Ok(fd) => run_dir(
                shared,
                fd,
                Here::Sub {
                    parent: job.parent,
                    name: job.name,
                },
            ),
            // A mount point that mountinfo did not show (or a race): not ours.
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                shared.mounts_skipped.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if vanished(&e) => {
                shared.vanished.fetch_add(1, Ordering::Relaxed);
            }
            Err(source) => fail(
                shared,
                WalkError {
                    path: rel_of(&job.parent, &job.name),
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

fn run_dir<V: Visitor + ?Sized>(shared: &Shared<'_, V>, fd: OwnedFd, here: Here) {
    if let Err(e) = read_dir(shared, fd, here) {
        fail(shared, e);
    }
}

fn read_dir<V: Visitor + ?Sized>(
    shared: &Shared<'_, V>,
    fd: OwnedFd,
    here: Here,
) -> Result<(), WalkError> {
    let err = |name: Option<&CStr>, source: io::Error| {
        let dir = match &here {
            Here::Root => PathBuf::new(),
            Here::Sub { parent, name } => rel_of(parent, name),
        };
        WalkError {
            path: match name {
                Some(n) => dir.join(n.to_string_lossy().as_ref()),
                None if dir.as_os_str().is_empty() => ".".into(),
                None => dir,
            },
            source,
        }
    };
    // This directory's relative path, only when a mount point lies below it.
    let toward_mount: Option<PathBuf> = match &here {
        Here::Root => shared.root.toward_mount.clone(),
        Here::Sub { parent, name } => parent
            .toward_mount
            .as_ref()
            .map(|p| p.join(name.to_string_lossy().as_ref()))
            .filter(|p| shared.toward.contains(p)),
    };
    rustix::process::fchdir(&fd).map_err(|e| err(None, e.into()))?;
    shared.directories.fetch_add(1, Ordering::Relaxed);
    let mut dir = Dir::new(fd).map_err(|e| err(None, e.into()))?;
    let mut subdirs: Vec<CString> = Vec::new();
    let mut count = 0u64;
    let mut gone = 0u64;
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(|e| err(None, e.into()))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        if let Some(p) = &toward_mount {
            if shared
                .skip
                .contains(&p.join(name.to_string_lossy().as_ref()))
            {
                shared.mounts_skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        }
        let dirfd = dir.fd().map_err(|e| err(None, e.into()))?;
        let mut kind = entry.file_type();
        if kind == FileType::Unknown {
            match rustix::fs::statat(dirfd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => kind = FileType::from_raw_mode(st.st_mode),
                Err(rustix::io::Errno::NOENT) => {
                    gone += 1;
                    continue;
                }
                Err(e) => return Err(err(Some(name), e.into())),
            }
        }
        match shared.visitor.visit(&Entry {
            dir: dirfd,
            name,
            kind,
        }) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                gone += 1;
                continue;
            }
            Err(e) => return Err(err(Some(name), e)),
        }
        count += 1;
        if kind == FileType::Directory {
            subdirs.push(name.to_owned());
        }
    }
    shared.entries.fetch_add(count, Ordering::Relaxed);
    if gone > 0 {
        shared.vanished.fetch_add(gone, Ordering::Relaxed);
    }
    if subdirs.is_empty() {
        return Ok(());
    }
    // A sub-directory's fd is kept for its jobs, without the Dir and its
    // read buffer.
    let kept = match here {
        Here::Root => None,
        Here::Sub { .. } => {
            let fd = dir.fd().map_err(|e| err(None, e.into()))?;
            let st = rustix::fs::fstat(fd).map_err(|e| err(None, e.into()))?;
            let dup = rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| err(None, e.into()))?;
            Some((st, dup))
        }
    };
    drop(dir);
    let node = match (here, kept) {
        (Here::Sub { parent, name }, Some((st, kept))) => {
            let node = Arc::new(Node {
                up: Some(parent),
                name,
                dev: st.st_dev,
                ino: st.st_ino,
                fd: Mutex::new(None),
                toward_mount,
            });
            shared.fds.keep(&node, Arc::new(kept));
            node
        }
        _ => Arc::clone(&shared.root),
    };
    let mut guard = shared.stack.lock().unwrap_or_else(|e| e.into_inner());
    for name in subdirs {
        guard.0.push(Job {
            parent: Arc::clone(&node),
            name,
        });
    }
    shared.ready.notify_all();
    Ok(())
}

/// Mount points strictly below `root` (relative paths), from mountinfo.
pub(crate) fn mounts_below(root: &Path) -> HashSet<PathBuf> {
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
