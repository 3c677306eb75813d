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

use std::collections::{HashMap, HashSet, VecDeque};
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

/// `Some(reason)` when `path` (resolved) is a system path or a home
/// directory, by its name. [`Protected`] also checks by identity.
fn system_path(path: &Path) -> Option<String> {
    if SYSTEM_PATHS.iter().any(|p| Path::new(p) == path) {
        return Some(format!("{} is a system path", path.display()));
    }
    if path.parent() == Some(Path::new("/home")) {
        return Some(format!("{} is a home directory", path.display()));
    }
    None
}

/// The directories no volume may be for a recursive change (U, z, Z):
/// every [`SYSTEM_PATHS`] entry and every extra directory the caller names
/// (the hook's `volumes_root` and state dir) with each directory above it,
/// all compared by (st_dev, st_ino), so a bind-mount alias or a symlinked
/// path is refused as well as the path itself. Home directories
/// (`/home/NAME`) are refused by name. Built once per hook run.
pub struct Protected {
    /// (dev, ino, path, what it is), e.g. "a system path".
    dirs: Vec<(u64, u64, PathBuf, String)>,
}

impl Protected {
    /// The system paths (those missing here skipped) and `extra`: (role,
    /// path) pairs such as `("volumes_root", …)`, with every directory above
    /// each (lexically, and above its real path).
    pub fn new(extra: &[(&str, &Path)]) -> Protected {
        let mut p = Protected { dirs: Vec::new() };
        for sys in SYSTEM_PATHS {
            p.add(Path::new(sys), "a system path".into());
        }
        for (role, path) in extra {
            p.add(path, format!("the hook's {role}"));
            let real = std::fs::canonicalize(path).ok();
            if let Some(real) = &real {
                p.add(real, format!("the hook's {role}"));
            }
            let above = path.ancestors().skip(1);
            let real_above = real.iter().flat_map(|r| r.ancestors().skip(1));
            for a in above.chain(real_above) {
                p.add(
                    a,
                    format!("a parent of the hook's {role} {}", path.display()),
                );
            }
        }
        p
    }

    fn add(&mut self, path: &Path, what: String) {
        if let Ok(st) = rustix::fs::stat(path) {
            if !self
                .dirs
                .iter()
                .any(|d| (d.0, d.1) == (st.st_dev, st.st_ino))
            {
                self.dirs
                    .push((st.st_dev, st.st_ino, path.to_path_buf(), what));
            }
        }
    }

    /// `Some(reason)` when the directory open at `fd` (any fd, O_PATH
    /// included; `real` is its path) must not be changed recursively.
    pub fn refuses(&self, fd: BorrowedFd<'_>, real: &Path) -> Option<String> {
        if let Some(why) = system_path(real) {
            return Some(why);
        }
        let st = rustix::fs::fstat(fd).ok()?;
        self.identity(st.st_dev, st.st_ino, real)
    }

    /// `Some(reason)` when `dir` (a file volume's parent directory, by its
    /// real path) is protected: a file directly in it is not changed either.
    pub fn refuses_dir_path(&self, dir: &Path) -> Option<String> {
        if let Some(why) = system_path(dir) {
            return Some(why);
        }
        let st = rustix::fs::stat(dir).ok()?;
        self.identity(st.st_dev, st.st_ino, dir)
    }

    #[cfg(test)]
    fn identity_of(&self, fd: BorrowedFd<'_>, real: &Path) -> Option<String> {
        let st = rustix::fs::fstat(fd).ok()?;
        self.identity(st.st_dev, st.st_ino, real)
    }

    fn identity(&self, dev: u64, ino: u64, real: &Path) -> Option<String> {
        let (_, _, path, what) = self.dirs.iter().find(|d| (d.0, d.1) == (dev, ino))?;
        Some(if path == real {
            format!("{} is {what}", path.display())
        } else {
            format!(
                "{} is the directory {} (the same inode): {} is {what}",
                real.display(),
                path.display(),
                path.display()
            )
        })
    }
}

/// How many inodes [`Links`] tracks at most (about 50 bytes each).
const LINKS_TRACKED: usize = 1 << 18;

/// The hardlink rule: a non-directory with `st_nlink > 1` is changed only
/// when the walk has seen all of its links inside the volume. Each sighting
/// of such an inode is counted; the sighting that brings the count to
/// `st_nlink` may change it (its directory and name are at hand then, so no
/// fd is kept). What is left at the end had links elsewhere (or in a mount
/// skipped, or one created during the walk) and is reported.
pub struct Links {
    seen: Mutex<HashMap<(u64, u64), u64>>,
    /// Sightings beyond the tracking cap (left unchanged).
    untracked: AtomicU64,
}

impl Default for Links {
    fn default() -> Self {
        Links {
            seen: Mutex::new(HashMap::new()),
            untracked: AtomicU64::new(0),
        }
    }
}

impl Links {
    /// Count one sighting of (dev, ino) with `nlink` links now; `true`
    /// when every link has now been seen: change it.
    pub fn all_seen(&self, dev: u64, ino: u64, nlink: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let tracked = seen.len();
        match seen.get_mut(&(dev, ino)) {
            Some(n) => {
                *n += 1;
                if *n >= nlink {
                    seen.remove(&(dev, ino));
                    return true;
                }
                false
            }
            None if tracked >= LINKS_TRACKED => {
                self.untracked.fetch_add(1, Ordering::Relaxed);
                false
            }
            None if nlink <= 1 => true,
            None => {
                seen.insert((dev, ino), 1);
                false
            }
        }
    }

    /// Files left unchanged because not all their links were seen.
    pub fn left(&self) -> u64 {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.len() as u64 + self.untracked.load(Ordering::Relaxed)
    }
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
    fn protected_by_identity_with_the_hooks_own_directories_and_their_parents() {
        let t = tempfile::tempdir().unwrap();
        let vr = t.path().join("lib/volumes");
        let sd = t.path().join("run/state");
        for d in [
            &vr,
            &sd,
            &t.path().join("lib/volumes/v"),
            &t.path().join("srv"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        let alias = t.path().join("srv/alias");
        std::os::unix::fs::symlink(&vr, &alias).unwrap();
        let p = Protected::new(&[("volumes_root", &vr), ("state_dir", &sd)]);
        let refuses = |path: &Path| {
            let fd = open(path);
            p.refuses(fd.as_fd(), &crate::fd::real_path(fd.as_fd()).unwrap())
        };
        let why = refuses(&vr).unwrap();
        assert!(why.contains("is the hook's volumes_root"), "{why}");
        assert!(refuses(&sd).unwrap().contains("state_dir"));
        let why = refuses(&t.path().join("lib")).unwrap();
        assert!(why.contains("a parent of the hook's volumes_root"), "{why}");
        assert!(refuses(t.path()).is_some());
        // Opened through a symlink: the same directory, refused.
        assert!(refuses(&alias).unwrap().contains("volumes_root"));
        // A volume in volumes_root, a sibling: fine.
        assert_eq!(refuses(&t.path().join("lib/volumes/v")), None);
        assert_eq!(refuses(&t.path().join("srv")), None);
        // System paths, by identity too (/ and /usr always exist).
        assert!(refuses(Path::new("/usr")).unwrap().contains("system path"));
        let none = Protected::new(&[]);
        let fd = open(Path::new("/usr"));
        let why = none
            .identity_of(fd.as_fd(), Path::new("/srv/x/alias"))
            .unwrap();
        assert!(why.contains("/usr is a system path"), "{why}");
        assert!(none.refuses_dir_path(Path::new("/etc")).is_some());
        assert!(none.refuses_dir_path(&t.path().join("srv")).is_none());
        assert!(none
            .refuses_dir_path(Path::new("/home/alice"))
            .unwrap()
            .contains("home directory"));
    }

    #[test]
    fn links_changes_an_inode_at_the_sighting_of_its_last_link() {
        let l = Links::default();
        assert!(l.all_seen(1, 10, 1), "a single link: at once");
        assert!(!l.all_seen(1, 20, 2));
        assert!(!l.all_seen(1, 30, 3));
        assert!(!l.all_seen(2, 20, 2), "another device, another inode");
        assert!(l.all_seen(1, 20, 2));
        assert!(!l.all_seen(1, 30, 3));
        assert_eq!(l.left(), 2, "(1, 30) with one link unseen, and (2, 20)");
    }

    /// Builds a comb with fds (deeper than PATH_MAX): at each level a file,
    /// `teeth` empty directories and `d`, which goes on.
    fn comb(root: &Path, depth: usize, teeth: usize) {
        let mut fd = open(root);
        for _ in 0..depth {
            drop(
                rustix::fs::openat(&fd, "f", OFlags::CREATE | OFlags::WRONLY, Mode::from(0o644))
                    .unwrap(),
            );
            for t in 0..teeth {
                rustix::fs::mkdirat(&fd, format!("t{t}"), Mode::from(0o755)).unwrap();
            }
            rustix::fs::mkdirat(&fd, "d", Mode::from(0o755)).unwrap();
            fd = rustix::fs::openat(&fd, "d", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                .unwrap();
        }
    }

    #[test]
    fn a_deep_comb_keeps_few_fds_open() {
        // Every directory visited; the highest fd number a visitor sees
        // bounds the fds open (other tests share the process: a margin).
        struct MaxFd(AtomicU64, AtomicU64);
        impl Visitor for MaxFd {
            fn visit(&self, e: &Entry<'_>) -> io::Result<()> {
                use std::os::fd::AsRawFd;
                self.0
                    .fetch_max(e.dir.as_raw_fd() as u64, Ordering::Relaxed);
                self.1.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
        let t = tempfile::tempdir().unwrap();
        let (depth, teeth) = (3000, 4);
        comb(t.path(), depth, teeth);
        for threads in [1, 4] {
            let v = MaxFd(AtomicU64::new(0), AtomicU64::new(0));
            let stats = walk(&open(t.path()), t.path(), threads, &v).unwrap();
            assert_eq!(stats.entries, (depth * (teeth + 2)) as u64);
            assert_eq!(stats.directories, (depth * (teeth + 1) + 1) as u64);
            let max = v.0.into_inner();
            assert!(max < 600, "threads={threads}: fd {max} seen");
        }
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(t.path())
            .status();
    }

    #[test]
    fn entries_and_directories_removed_mid_walk_are_skipped_and_counted() {
        // Each file is removed just before its stat; each directory just
        // after its visit, before the walk opens it.
        struct Remover;
        impl Visitor for Remover {
            fn visit(&self, e: &Entry<'_>) -> io::Result<()> {
                let name = std::ffi::OsStr::from_bytes(e.name.to_bytes());
                if e.kind == FileType::Directory {
                    std::fs::remove_dir_all(name)?;
                    return Ok(());
                }
                std::fs::remove_file(name)?;
                rustix::fs::statat(e.dir, e.name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
                Ok(())
            }
        }
        let t = tempfile::tempdir().unwrap();
        for i in 0..10 {
            std::fs::create_dir_all(t.path().join(format!("gone{i}/sub"))).unwrap();
            std::fs::write(t.path().join(format!("f{i}")), "").unwrap();
        }
        for threads in [1, 3] {
            let stats = walk(&open(t.path()), t.path(), threads, &Remover);
            if threads == 3 {
                // Nothing left to walk: an empty root.
                assert_eq!(stats.unwrap().entries, 0);
                continue;
            }
            let stats = stats.unwrap();
            assert_eq!(stats.entries, 10, "{stats:?}");
            assert_eq!(stats.vanished, 20, "{stats:?}");
            assert_eq!(stats.directories, 1, "{stats:?}");
        }
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo("/plain\\"), "/plain\\");
    }
}
