use super::protected::system_path;
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

/// A chain of pending directories as deep as any comb drops without
/// recursing (a worker thread's stack is small).
#[test]
fn a_deep_node_chain_drops_without_recursion() {
    let dropped = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(|| {
            let mut node: Option<Arc<Node>> = None;
            for i in 0..200_000u64 {
                node = Some(Arc::new(Node {
                    up: node.take(),
                    name: CString::new("d").unwrap(),
                    dev: 0,
                    ino: i,
                    fd: Mutex::new(None),
                    toward_mount: None,
                }));
            }
            drop(node);
            true
        })
        .unwrap()
        .join();
    assert!(
        matches!(dropped, Ok(true)),
        "dropping a deep chain overflowed"
    );
}
