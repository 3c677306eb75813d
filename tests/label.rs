//! Relabelling on a real file system (root only): `security.selinux` xattrs
//! on ext4 under /var/tmp. With SELinux off the kernel stores any value, so
//! this proves what the walk touches and when, not that access is right
//! (the VM tier, tests/vm/guest/t-selinux-*.sh, proves that).
//!
//! Not root: prints SKIP with the reason; with CI=true that is a failure.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_volume_hook::apply::relabel::{self as label, RelabelOutcome};
use oci_volume_hook::apply::Protected;
use oci_volume_hook::config::RelabelPolicy;
use rustix::fs::{Mode, OFlags};

const A: &str = "system_u:object_r:container_file_t:s0:c1,c2";
const B: &str = "system_u:object_r:container_file_t:s0:c3,c4";

fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root, and CI=true: privileged tests must run in CI");
    }
    eprintln!(
        "SKIP: {test}: needs root (writes security.selinux and trusted.* xattrs, bind-mounts)"
    );
    false
}

fn scratch() -> tempfile::TempDir {
    // ext4 on this machine and most CI runners; /tmp may be tmpfs.
    tempfile::Builder::new()
        .prefix("ovh-label-test.")
        .tempdir_in("/var/tmp")
        .expect("a scratch directory under /var/tmp")
}

/// One relabel with 2 workers and no extra protected directory.
fn relabel(
    fd: &OwnedFd,
    is_dir: bool,
    target: &str,
    policy: RelabelPolicy,
) -> Result<RelabelOutcome, oci_volume_hook::apply::ApplyError> {
    label::relabel(fd, is_dir, target, policy, 2, &Protected::new(&[]))
}

fn open(p: &Path) -> OwnedFd {
    rustix::fs::open(p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap()
}

fn label_of(p: &Path) -> Option<String> {
    label::read_labels(p).unwrap().0
}

fn marker_of(p: &Path) -> Option<String> {
    label::read_labels(p).unwrap().1
}

/// Every path below `root` (root included), not following symlinks, not
/// entering `skip`.
fn all(root: &Path, skip: Option<&Path>) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        i += 1;
        if Some(p.as_path()) == skip {
            continue;
        }
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                out.push(e.unwrap().path());
            }
        }
    }
    out
}

fn tree(root: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = root.join(format!("d{d}/sub"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            std::fs::write(dir.join(format!("f{f}")), b"").unwrap();
        }
    }
}

struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn relabel_walks_everything_once_then_skips_in_o1() {
    if !root_or_skip("relabel_walks_everything_once_then_skips_in_o1") {
        return;
    }
    let t = scratch();
    let vol = t.path().join("vol");
    tree(&vol, 20, 50);
    // A symlink to a file outside the volume: the link gets the label, the
    // file it points to does not.
    let outside = t.path().join("outside.txt");
    std::fs::write(&outside, b"host file").unwrap();
    std::os::unix::fs::symlink(&outside, vol.join("d0/link-out")).unwrap();
    std::os::unix::fs::symlink(t.path(), vol.join("d1/link-dir-out")).unwrap();
    // A bind mount inside the volume: not entered.
    let other = t.path().join("other-fs");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("inner.txt"), b"").unwrap();
    let mnt = vol.join("d2/mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    rustix::mount::mount_bind(&other, &mnt).expect("bind mount inside the volume");
    let _guard = Unmount(mnt.clone());

    let fd = open(&vol);
    let outcome = relabel(&fd, true, A, RelabelPolicy::OnChange).unwrap();
    let RelabelOutcome::Walked { stats, changed, .. } = outcome else {
        panic!("first relabel skipped")
    };
    let expected = all(&vol, Some(&mnt));
    // Every entry but the mount point (skipped, not visited) and the root
    // (counted in `changed`, not in `entries`).
    assert_eq!(stats.entries as usize, expected.len() - 2);
    assert_eq!(changed as usize, expected.len() - 1);
    assert_eq!(stats.mounts_skipped, 1);
    for p in &expected {
        if p == &mnt {
            continue;
        }
        assert_eq!(label_of(p).as_deref(), Some(A), "{}", p.display());
    }
    assert_eq!(label_of(&vol.join("d0/link-out")).as_deref(), Some(A));
    assert_eq!(label_of(&outside), None, "followed a symlink out");
    assert_eq!(label_of(t.path()), None, "followed a directory symlink out");
    assert_eq!(label_of(&other.join("inner.txt")), None, "entered a mount");
    assert_eq!(label_of(&other), None, "labelled the mount's root");
    assert_eq!(marker_of(&vol).as_deref(), Some(A), "no completion marker");

    // Second start: O(1), whatever the size.
    let t0 = Instant::now();
    let again = relabel(&fd, true, A, RelabelPolicy::OnChange).unwrap();
    let skip = t0.elapsed();
    eprintln!(
        "relabel: first walk {} entries; second start skipped in {:?}",
        stats.entries + 1,
        skip
    );
    assert_eq!(again, RelabelOutcome::Skipped);
    assert!(skip < Duration::from_millis(20), "skip took {skip:?}");

    // A file labelled wrongly behind the hook's back is kept on-change (the
    // documented trade-off) and fixed by relabel = "always", which rewrites
    // only what differs.
    let stray = vol.join("d3/sub/f7");
    rustix::fs::lsetxattr(
        &stray,
        "security.selinux",
        b"u:r:other_t:s0\0",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    assert_eq!(
        relabel(&fd, true, A, RelabelPolicy::OnChange).unwrap(),
        RelabelOutcome::Skipped
    );
    match relabel(&fd, true, A, RelabelPolicy::Always).unwrap() {
        RelabelOutcome::Walked { changed, .. } => assert_eq!(changed, 1),
        o => panic!("{o:?}"),
    }
    assert_eq!(label_of(&stray).as_deref(), Some(A));

    // Another target: everything is rewritten, the marker follows.
    match relabel(&fd, true, B, RelabelPolicy::OnChange).unwrap() {
        RelabelOutcome::Walked { changed, .. } => assert_eq!(changed as usize, expected.len() - 1),
        o => panic!("{o:?}"),
    }
    assert_eq!(marker_of(&vol).as_deref(), Some(B));
}

#[test]
fn single_file_volume_and_system_paths() {
    if !root_or_skip("single_file_volume_and_system_paths") {
        return;
    }
    let t = scratch();
    let f = t.path().join("config.yaml");
    std::fs::write(&f, b"x").unwrap();
    let fd = open(&f);
    assert!(matches!(
        relabel(&fd, false, A, RelabelPolicy::OnChange).unwrap(),
        RelabelOutcome::Walked { changed: 1, .. }
    ));
    assert_eq!(label_of(&f).as_deref(), Some(A));
    assert_eq!(label_of(t.path()), None);
    for sys in ["/", "/usr", "/etc", "/var/tmp"] {
        let e = relabel(&open(Path::new(sys)), true, A, RelabelPolicy::Always).unwrap_err();
        assert!(e.to_string().contains("system path"), "{sys}: {e}");
    }
}

#[test]
fn a_relabel_killed_mid_walk_is_redone_next_time() {
    if !root_or_skip("a_relabel_killed_mid_walk_is_redone_next_time") {
        return;
    }
    let t = scratch();
    let vol = t.path().join("vol");
    let t0 = Instant::now();
    tree(&vol, 50, 200); // 10k files
    eprintln!("tree: {:?}", t0.elapsed());
    let fd = open(&vol);
    assert!(matches!(
        relabel(&fd, true, A, RelabelPolicy::OnChange).unwrap(),
        RelabelOutcome::Walked { .. }
    ));
    assert_eq!(marker_of(&vol).as_deref(), Some(A));
    eprintln!("first relabel: {:?}", t0.elapsed());

    // Relabel to B in another process; SIGKILL it as soon as the marker is
    // gone (the walk has started).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oci-volume-hook"))
        .args([
            "--log-level",
            "warn",
            "relabel",
            "--threads",
            "1",
            "--context",
            B,
        ])
        .arg(&vol)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while marker_of(&vol).is_some() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the walk never started"
        );
        std::thread::yield_now();
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let paths = all(&vol, None);
    let done = paths
        .iter()
        .filter(|p| label_of(p).as_deref() == Some(B))
        .count();
    eprintln!(
        "killed mid-walk: {done} of {} entries relabelled",
        paths.len()
    );
    assert_eq!(marker_of(&vol), None, "the killed walk left a marker");
    assert!(done < paths.len(), "the walk finished before the kill");
    assert_eq!(
        label_of(&vol).as_deref(),
        Some(A),
        "the root is labelled last"
    );

    // The next start sees no marker and walks again, to completion.
    match relabel(&fd, true, B, RelabelPolicy::OnChange).unwrap() {
        RelabelOutcome::Walked { changed, .. } => assert_eq!(changed as usize, paths.len() - done),
        o => panic!("{o:?}"),
    }
    assert!(paths.iter().all(|p| label_of(p).as_deref() == Some(B)));
    assert_eq!(marker_of(&vol).as_deref(), Some(B));
}

/// Hardlinks: a file with a link outside the volume keeps its label; a
/// pair wholly inside is relabelled; the count is in the outcome.
#[test]
fn hardlinked_files_are_relabelled_only_when_every_link_is_inside() {
    if !root_or_skip("hardlinked_files_are_relabelled_only_when_every_link_is_inside") {
        return;
    }
    let t = scratch();
    let vol = t.path().join("vol");
    std::fs::create_dir_all(vol.join("sub")).unwrap();
    let secret = t.path().join("secret");
    std::fs::write(&secret, b"host").unwrap();
    std::fs::hard_link(&secret, vol.join("sub/planted")).unwrap();
    std::fs::write(vol.join("a"), b"pair").unwrap();
    std::fs::hard_link(vol.join("a"), vol.join("sub/b")).unwrap();
    let fd = open(&vol);
    let out = relabel(&fd, true, A, RelabelPolicy::OnChange).unwrap();
    let RelabelOutcome::Walked {
        changed,
        hardlinks_skipped,
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        label_of(&secret),
        None,
        "relabelled a file outside the volume"
    );
    assert_eq!(hardlinks_skipped, 1);
    for p in ["a", "sub/b", "sub", ""] {
        assert_eq!(label_of(&vol.join(p)).as_deref(), Some(A), "{p}");
    }
    assert_eq!(changed, 3, "vol, sub, the a/b inode once");
}
