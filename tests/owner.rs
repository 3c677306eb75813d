//! Option `U` as root on a real file system (ext4 under /var/tmp here):
//! every entry owned, symlinks not followed, other mounts not walked into,
//! a hook killed mid-walk finishes on the next start.
//!
//! Needs root. Without it each test prints `SKIP: … needs root` and passes;
//! with CI=true it fails instead.

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_volume_hook::apply::owner::{self, OwnerDecision, MARKER};
use oci_volume_hook::apply::Protected;
use oci_volume_hook::config::OwnerChange;
use oci_volume_hook::plan::OwnerPlan;
use rustix::fs::{Mode, OFlags};

const UID: u32 = 1000;
const GID: u32 = 1001;

/// `false` (after saying so) when the test cannot run here.
fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root, and CI=true");
    }
    eprintln!("SKIP: {test}: needs root");
    false
}

/// A scratch directory on a disk file system (tmpfs /tmp would test less).
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ovh-owner-test.")
        .tempdir_in("/var/tmp")
        .unwrap()
}

fn open_path(p: &Path) -> OwnedFd {
    rustix::fs::open(p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap()
}

fn plan(policy: OwnerChange) -> OwnerPlan {
    OwnerPlan {
        uid: UID,
        gid: GID,
        policy,
    }
}

fn marker(p: &Path) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    rustix::fs::lgetxattr(p, MARKER, &mut buf[..])
        .ok()
        .map(|n| buf[..n].to_vec())
}

/// Every entry at and below `root` (not following symlinks, not entering
/// `except`) with its owner.
fn owners(root: &Path, except: Option<&Path>) -> Vec<(PathBuf, u32, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        out.push((p.clone(), m.uid(), m.gid()));
        if m.is_dir() && Some(p.as_path()) != except {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    out
}

fn assert_all_owned(root: &Path, except: Option<&Path>) -> usize {
    let all = owners(root, except);
    let wrong: Vec<_> = all
        .iter()
        .filter(|(_, u, g)| (*u, *g) != (UID, GID))
        .take(5)
        .collect();
    assert!(wrong.is_empty(), "not owned by {UID}:{GID}: {wrong:?}");
    all.len()
}

fn mktree(root: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = root.join(format!("d{d}")).join("sub");
        fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            fs::File::create(dir.join(format!("f{f}"))).unwrap();
        }
    }
}

/// One `owner::apply` of the volume at `vol` (2 workers, no extra protected
/// directory), through a fresh O_PATH fd.
fn apply_once(
    vol: &Path,
    policy: OwnerChange,
) -> Result<owner::OwnerOutcome, oci_volume_hook::apply::ApplyError> {
    let fd = open_path(vol);
    owner::apply(fd.as_fd(), vol, &plan(policy), 2, &Protected::new(&[]))
}

#[test]
fn u_walk_owns_everything_and_never_follows_symlinks() {
    if !root_or_skip("u_walk_owns_everything_and_never_follows_symlinks") {
        return;
    }
    let t = scratch();
    let vol = t.path().join("vol");
    let outside = t.path().join("outside");
    fs::create_dir_all(outside.join("dir")).unwrap();
    fs::write(outside.join("secret"), "root's").unwrap();
    fs::write(outside.join("dir/inner"), "root's").unwrap();
    fs::create_dir(&vol).unwrap();
    mktree(&vol, 20, 50);
    fs::write(vol.join("top-file"), "x").unwrap();
    symlink(outside.join("secret"), vol.join("link-to-host-file")).unwrap();
    symlink(outside.join("dir"), vol.join("d3/link-to-host-dir")).unwrap();
    symlink("../../../outside/secret", vol.join("d4/sub/relative-link")).unwrap();
    symlink("dangling-target", vol.join("dangling")).unwrap();

    let out = apply_once(&vol, OwnerChange::OnRootMismatch).unwrap();
    assert!(matches!(out.decision, OwnerDecision::Walk(_)), "{out:?}");
    let n = assert_all_owned(&vol, None);
    assert_eq!(n as u64, out.entries + 1, "every entry visited once");
    assert_eq!(out.changed, out.entries + 1);
    // The links themselves changed; what they point at did not.
    for p in ["secret", "dir", "dir/inner"] {
        let m = fs::metadata(outside.join(p)).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (0, 0),
            "{p} outside the volume changed owner"
        );
    }
    assert_eq!(
        fs::symlink_metadata(vol.join("link-to-host-file"))
            .unwrap()
            .uid(),
        UID
    );
    assert_eq!(marker(&vol).as_deref(), Some(&b"1000:1001"[..]));

    // Restart: O(1) skip, nothing touched.
    fs::File::create(vol.join("new-root-file")).unwrap();
    let out = apply_once(&vol, OwnerChange::OnRootMismatch).unwrap();
    assert_eq!(out.decision, OwnerDecision::Skip);
    assert_eq!(fs::metadata(vol.join("new-root-file")).unwrap().uid(), 0);
    // always: walks again and picks it up.
    let out = apply_once(&vol, OwnerChange::Always).unwrap();
    assert!(matches!(out.decision, OwnerDecision::Walk(_)));
    assert_eq!(out.changed, 1, "only the new file needed a change");
    assert_all_owned(&vol, None);

    // A root changed by hand (marker kept) is a mismatch: walk again.
    rustix::fs::chown(&vol, Some(rustix::fs::Uid::ROOT), None).unwrap();
    let out = apply_once(&vol, OwnerChange::OnRootMismatch).unwrap();
    assert!(
        matches!(
            out.decision,
            OwnerDecision::Walk(owner::WalkReason::RootMismatch { .. })
        ),
        "{out:?}"
    );
    assert_all_owned(&vol, None);
}

#[test]
fn file_volume_is_chowned_without_following_a_link() {
    if !root_or_skip("file_volume_is_chowned_without_following_a_link") {
        return;
    }
    let t = scratch();
    let f = t.path().join("app.conf");
    fs::write(&f, "x").unwrap();
    let out = apply_once(&f, OwnerChange::OnRootMismatch).unwrap();
    assert_eq!(out.changed, 1);
    let m = fs::metadata(&f).unwrap();
    assert_eq!((m.uid(), m.gid()), (UID, GID));
}

/// Runs the rest of a test in a private mount namespace: re-executes this
/// test binary under `unshare -m` with OVH_TEST_IN_MNTNS set, and checks
/// the child passed. Returns true in the child.
fn in_private_mount_ns(test: &str) -> bool {
    if std::env::var_os("OVH_TEST_IN_MNTNS").is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("OVH_TEST_IN_MNTNS", "1")
        .output()
        .expect("running unshare -m (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{test} in a private mount ns failed:\n{text}"
    );
    assert!(
        text.contains("1 passed"),
        "{test} did not run in the child:\n{text}"
    );
    false
}

fn run(cmd: &[&str]) {
    let st = Command::new(cmd[0]).args(&cmd[1..]).status().unwrap();
    assert!(st.success(), "{cmd:?}");
}

#[test]
fn bind_mount_inside_the_volume_is_not_walked_into() {
    if !root_or_skip("bind_mount_inside_the_volume_is_not_walked_into")
        || !in_private_mount_ns("bind_mount_inside_the_volume_is_not_walked_into")
    {
        return;
    }
    let t = scratch();
    let vol = t.path().join("vol");
    let other = t.path().join("other");
    fs::create_dir_all(vol.join("a/mnt")).unwrap();
    fs::create_dir_all(vol.join("a/tmpfs")).unwrap();
    fs::create_dir_all(other.join("deep")).unwrap();
    fs::write(other.join("deep/file"), "host").unwrap();
    fs::write(vol.join("a/f"), "v").unwrap();
    // The same file system bound in, and another file system mounted in.
    run(&[
        "mount",
        "--bind",
        other.to_str().unwrap(),
        vol.join("a/mnt").to_str().unwrap(),
    ]);
    run(&[
        "mount",
        "-t",
        "tmpfs",
        "tmpfs",
        vol.join("a/tmpfs").to_str().unwrap(),
    ]);
    fs::write(vol.join("a/tmpfs/t"), "t").unwrap();

    let out = apply_once(&vol, OwnerChange::OnRootMismatch).unwrap();
    assert_eq!(out.mounts_skipped, 2, "{out:?}");
    for p in ["deep", "deep/file"] {
        assert_eq!(fs::symlink_metadata(other.join(p)).unwrap().uid(), 0, "{p}");
    }
    assert_eq!(
        fs::symlink_metadata(vol.join("a/tmpfs/t")).unwrap().uid(),
        0
    );
    assert_eq!(fs::symlink_metadata(vol.join("a/f")).unwrap().uid(), UID);
    run(&["umount", vol.join("a/mnt").to_str().unwrap()]);
    run(&["umount", vol.join("a/tmpfs").to_str().unwrap()]);
}

#[test]
fn system_paths_are_refused() {
    if !root_or_skip("system_paths_are_refused") || !in_private_mount_ns("system_paths_are_refused")
    {
        return;
    }
    // A scratch tmpfs over /mnt: were the refusal broken, only it changes.
    run(&["mount", "-t", "tmpfs", "tmpfs", "/mnt"]);
    fs::create_dir("/mnt/x").unwrap();
    let fd = open_path(Path::new("/mnt"));
    let e = owner::apply(
        fd.as_fd(),
        Path::new("/mnt"),
        &plan(OwnerChange::OnRootMismatch),
        2,
        &Protected::new(&[]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("/mnt is a system path"), "{e}");
    let e = e.into_hook("volume \"/mnt:/m:U\"");
    assert_eq!(e.exit_code(), 2, "{e}");
    assert_eq!(fs::metadata("/mnt/x").unwrap().uid(), 0);
    drop(fd);
    run(&["umount", "/mnt"]);
}

/// The real hook, killed mid-walk, then run again: the volume ends fully
/// owned and marked, and the killed run never left a marker behind.
#[test]
fn killed_walk_is_finished_by_the_next_start() {
    if !root_or_skip("killed_walk_is_finished_by_the_next_start") {
        return;
    }
    let t = scratch();
    let base = t.path();
    let volumes = base.join("volumes");
    let vol = volumes.join("big");
    fs::create_dir_all(&vol).unwrap();
    rustix::fs::chmod(&volumes, Mode::from_raw_mode(0o700)).unwrap();
    mktree(&vol, 150, 600); // 90k files, 300 directories
                            // A marker from an earlier finished walk (root since changed by hand):
                            // the killed run must remove it before changing anything.
    rustix::fs::lsetxattr(&vol, MARKER, b"1000:1001", rustix::fs::XattrFlags::empty()).unwrap();
    fs::create_dir_all(base.join("rootfs")).unwrap();
    fs::create_dir_all(base.join("bundle")).unwrap();
    let config = base.join("config.toml");
    fs::write(
        &config,
        format!(
            "volumes_root = \"{}\"\nstate_dir = \"{}\"\n",
            volumes.display(),
            base.join("state").display()
        ),
    )
    .unwrap();
    fs::write(
        base.join("bundle/config.json"),
        format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"{}"}},"process":{{"user":{{"uid":{UID},"gid":{GID}}}}},"annotations":{{"oci-volume-hook/volumes":"big:/data:U"}}}}"#,
            base.join("rootfs").display()
        ),
    )
    .unwrap();
    // The "container": a process in its own mount namespace.
    let mut container = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sleep", "120"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let state = format!(
        r#"{{"ociVersion":"1.0.2","id":"ovh-owner-kill-test","status":"creating","pid":{},"bundle":"{}"}}"#,
        container.id(),
        base.join("bundle").display()
    );
    let hook = |input: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_oci-volume-hook"))
            .args(["--config", config.to_str().unwrap(), "prestart"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        c
    };

    // First start: kill it once the walk has visibly begun.
    let probe: Vec<PathBuf> = (0..150)
        .step_by(7)
        .map(|d| vol.join(format!("d{d}/sub/f300")))
        .collect();
    let mut first = hook(&state);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if probe
            .iter()
            .any(|p| fs::symlink_metadata(p).map(|m| m.uid()).ok() == Some(UID))
        {
            break;
        }
        if let Some(st) = first.try_wait().unwrap() {
            panic!("the hook ended ({st}) before it was seen changing owners");
        }
        assert!(Instant::now() < deadline, "the walk never started");
        std::thread::sleep(Duration::from_micros(200));
    }
    first.kill().unwrap();
    let st = first.wait().unwrap();
    assert!(
        !st.success(),
        "the hook finished before SIGKILL: make the tree larger"
    );
    let all = owners(&vol, None);
    let done = all.iter().filter(|(_, u, _)| *u == UID).count();
    eprintln!("killed mid-walk with {done} of {} entries owned", all.len());
    assert!(done < all.len(), "the walk had finished before the kill");
    assert_eq!(marker(&vol), None, "a killed walk left a completion marker");
    assert_eq!(
        fs::metadata(&vol).unwrap().uid(),
        0,
        "root changed before the rest"
    );

    // Second start: finishes the job.
    let second = hook(&state).wait_with_output().unwrap();
    assert!(
        second.status.success(),
        "second start failed: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    let n = assert_all_owned(&vol, None);
    assert_eq!(n, 1 + 150 * 2 + 150 * 600);
    assert_eq!(marker(&vol).as_deref(), Some(&b"1000:1001"[..]));

    // Third start: the O(1) path (the hook attaches again in the same ns,
    // on top; that is fine for the test).
    let start = Instant::now();
    let third = hook(&state).wait_with_output().unwrap();
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    eprintln!(
        "restart with the root already matching: {:?}",
        start.elapsed()
    );
    let _ = container.kill();
    let _ = container.wait();
}

/// `check` shows the owner decision: current owner, target, walk or skip,
/// and whether the mount is idmapped.
#[test]
fn check_shows_the_owner_decision() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path();
    fs::create_dir_all(base.join("volumes/v")).unwrap();
    fs::create_dir_all(base.join("b/rootfs")).unwrap();
    let config = base.join("c.toml");
    fs::write(
        &config,
        format!(
            "volumes_root = \"{}\"\nstate_dir = \"{}\"\n",
            base.join("volumes").display(),
            base.join("st").display()
        ),
    )
    .unwrap();
    fs::write(
        base.join("b/config.json"),
        r#"{"root":{"path":"rootfs"},"process":{"user":{"uid":1000,"gid":1001}},"linux":{"namespaces":[{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],"gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}}"#,
    )
    .unwrap();
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_oci-volume-hook"))
            .args(["--config", config.to_str().unwrap(), "check", "--bundle"])
            .arg(base.join("b"))
            .args(["--annotation", "oci-volume-hook/volumes=v:/v:U;w:/w:idmap"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let me = fs::metadata(base.join("volumes/v")).unwrap();
    let text = check();
    let want = format!(
        "owner:       current {}:{}, no marker; target 101000:101001 (on-root-mismatch); walk the volume",
        me.uid(),
        me.gid()
    );
    assert!(text.contains(&want), "{text}");
    assert!(text.contains("idmap:       yes"), "{text}");
    assert!(
        text.contains("would be created, owner 1000:1001"),
        "idmap volumes are created with container ids: {text}"
    );
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP: check_shows_the_owner_decision (skip path): needs root");
        return;
    }
    let fd = open_path(&base.join("volumes/v"));
    let p = OwnerPlan {
        uid: 101000,
        gid: 101001,
        policy: OwnerChange::OnRootMismatch,
    };
    owner::apply(
        fd.as_fd(),
        &base.join("volumes/v"),
        &p,
        1,
        &Protected::new(&[]),
    )
    .unwrap();
    let text = check();
    assert!(
        text.contains("current 101000:101001, marker 101000:101001; target 101000:101001 (on-root-mismatch); skip"),
        "{text}"
    );
}

/// Hardlinks: a file with a link outside the volume keeps its owner; a
/// pair wholly inside is changed; the count is in the outcome.
#[test]
fn hardlinked_files_change_only_when_every_link_is_inside() {
    if !root_or_skip("hardlinked_files_change_only_when_every_link_is_inside") {
        return;
    }
    let t = scratch();
    let vol = t.path().join("vol");
    fs::create_dir_all(vol.join("sub")).unwrap();
    let secret = t.path().join("secret");
    fs::write(&secret, "root's").unwrap();
    rustix::fs::chmod(&secret, Mode::from_raw_mode(0o600)).unwrap();
    fs::hard_link(&secret, vol.join("sub/planted")).unwrap();
    fs::write(vol.join("a"), "pair").unwrap();
    fs::hard_link(vol.join("a"), vol.join("sub/b")).unwrap();
    fs::hard_link(vol.join("a"), vol.join("c")).unwrap();
    let out = apply_once(&vol, OwnerChange::OnRootMismatch).unwrap();
    let m = fs::metadata(&secret).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o600));
    assert_eq!(out.hardlinks_skipped, 1, "{out:?}");
    for p in ["a", "sub/b", "c", "sub", ""] {
        let m = fs::symlink_metadata(vol.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (UID, GID), "{p}");
    }
    // vol, sub, the a/b/c inode once
    assert_eq!(out.changed, 3, "{out:?}");
}

/// System paths and the hook's own directories by identity: a bind-mount
/// alias of a system directory, volumes_root, the state dir and a parent.
#[test]
fn protected_directories_are_refused_by_identity() {
    if !root_or_skip("protected_directories_are_refused_by_identity")
        || !in_private_mount_ns("protected_directories_are_refused_by_identity")
    {
        return;
    }
    run(&["mount", "-t", "tmpfs", "tmpfs", "/mnt"]);
    fs::create_dir("/mnt/x").unwrap();
    let t = scratch();
    let alias = t.path().join("export/alias");
    let vr = t.path().join("lib/volumes");
    let sd = t.path().join("run/state");
    for d in [&alias, &vr, &sd, &t.path().join("lib/volumes/v")] {
        fs::create_dir_all(d).unwrap();
    }
    run(&["mount", "--bind", "/mnt", alias.to_str().unwrap()]);
    let protected = Protected::new(&[("volumes_root", &vr), ("state_dir", &sd)]);
    let refused = |p: &Path, words: &str| {
        let fd = open_path(p);
        let e = owner::apply(
            fd.as_fd(),
            p,
            &plan(OwnerChange::OnRootMismatch),
            2,
            &protected,
        )
        .unwrap_err();
        assert!(e.to_string().contains(words), "{}: {e}", p.display());
        assert_eq!(e.into_hook("v").exit_code(), 2);
        assert_eq!(fs::metadata(p).unwrap().uid(), 0, "{}", p.display());
    };
    refused(&alias, "/mnt is a system path");
    assert_eq!(fs::metadata("/mnt/x").unwrap().uid(), 0);
    refused(&vr, "volumes_root");
    refused(&sd, "state_dir");
    refused(&t.path().join("lib"), "a parent of the hook's volumes_root");
    refused(&t.path().join("run"), "a parent of the hook's state_dir");
    // A file directly in an alias of a protected directory.
    fs::write("/mnt/conf", "x").unwrap();
    refused(&alias.join("conf"), "system path");
    // A volume inside volumes_root is fine.
    let v = t.path().join("lib/volumes/v");
    let fd = open_path(&v);
    owner::apply(
        fd.as_fd(),
        &v,
        &plan(OwnerChange::OnRootMismatch),
        2,
        &protected,
    )
    .unwrap();
    assert_eq!(fs::metadata(&v).unwrap().uid(), UID);
    run(&["umount", alias.to_str().unwrap()]);
    run(&["umount", "/mnt"]);
}

/// A comb 12,000 directories deep with 8 empty teeth per level, under
/// `ulimit -n 1024`: the walk finishes, peak RSS (VmHWM) stays under
/// 64 MiB. Runs the walk in a child (this test binary under prlimit) so
/// that the figure is the walk's, not the other tests'.
#[test]
fn a_12000_deep_comb_is_walked_in_bounded_memory_and_fds() {
    const TEST: &str = "a_12000_deep_comb_is_walked_in_bounded_memory_and_fds";
    if let Some(vol) = std::env::var_os("OVH_TEST_COMB") {
        let vol = PathBuf::from(vol);
        let out = apply_once(&vol, OwnerChange::OnRootMismatch).unwrap();
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let hwm = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .unwrap()
            .to_string();
        eprintln!(
            "comb walk: {} entries, {} changed; {hwm}",
            out.entries, out.changed
        );
        let kib: u64 = hwm.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(kib < 64 * 1024, "peak RSS {kib} KiB");
        return;
    }
    if !root_or_skip(TEST) {
        return;
    }
    let t = scratch();
    let vol = t.path().join("comb");
    fs::create_dir(&vol).unwrap();
    let (depth, teeth) = (12_000, 8);
    let mut fd = rustix::fs::open(&vol, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    for _ in 0..depth {
        drop(
            rustix::fs::openat(&fd, "f", OFlags::CREATE | OFlags::WRONLY, Mode::from(0o644))
                .unwrap(),
        );
        for i in 0..teeth {
            rustix::fs::mkdirat(&fd, format!("t{i}"), Mode::from(0o755)).unwrap();
        }
        rustix::fs::mkdirat(&fd, "d", Mode::from(0o755)).unwrap();
        fd = rustix::fs::openat(&fd, "d", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .unwrap();
    }
    drop(fd);
    let started = Instant::now();
    let out = Command::new("prlimit")
        .arg("--nofile=1024:1024")
        .arg(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env("OVH_TEST_COMB", &vol)
        .output()
        .expect("running prlimit (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{}",
        text.lines()
            .filter(|l| l.contains("comb walk"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "comb walk under prlimit --nofile=1024: {:?}",
        started.elapsed()
    );
    assert!(out.status.success(), "the comb walk failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "did not run in the child:\n{text}"
    );
    assert!(!text.contains("Too many open files"), "{text}");
    // find (fts) walks a tree deeper than PATH_MAX.
    let left = Command::new("find")
        .arg(&vol)
        .args([
            "(",
            "!",
            "-uid",
            &UID.to_string(),
            "-o",
            "!",
            "-gid",
            &GID.to_string(),
            ")",
            "-print",
        ])
        .output()
        .unwrap();
    assert!(left.status.success());
    let left = String::from_utf8_lossy(&left.stdout).lines().count();
    assert_eq!(left, 0, "entries of the comb not given to {UID}:{GID}");
    // rm -rf (fts) takes a tree deeper than PATH_MAX apart.
    run(&["rm", "-rf", vol.to_str().unwrap()]);
}

/// A first walk (no marker) and a re-walk (another walk's marker) both
/// stat first: an entry already owned keeps its set-user-ID bit and is not
/// counted as changed; a planted hardlink to a file outside the volume is
/// left alone.
#[test]
fn walks_leave_entries_already_owned_untouched() {
    if !root_or_skip("walks_leave_entries_already_owned_untouched") {
        return;
    }
    for first in [true, false] {
        let t = scratch();
        let vol = t.path().join("vol");
        fs::create_dir_all(vol.join("dir")).unwrap();
        let secret = t.path().join("secret");
        fs::write(&secret, "root's").unwrap();
        fs::hard_link(&secret, vol.join("dir/planted")).unwrap();
        let owned = vol.join("dir/owned");
        fs::write(&owned, "#!/bin/true").unwrap();
        rustix::fs::chown(
            &owned,
            Some(rustix::fs::Uid::from_raw(UID)),
            Some(rustix::fs::Gid::from_raw(GID)),
        )
        .unwrap();
        rustix::fs::chmod(&owned, Mode::from_raw_mode(0o4755)).unwrap();
        fs::write(vol.join("dir/root"), "").unwrap();
        if !first {
            rustix::fs::lsetxattr(&vol, MARKER, b"1:1", rustix::fs::XattrFlags::empty()).unwrap();
        }
        let out = apply_once(&vol, OwnerChange::OnRootMismatch).unwrap();
        let m = fs::metadata(&secret).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "first={first}");
        assert_eq!(out.hardlinks_skipped, 1, "first={first} {out:?}");
        for p in ["", "dir", "dir/root", "dir/owned"] {
            let m = fs::symlink_metadata(vol.join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), (UID, GID), "first={first} {p}");
        }
        // vol, dir, root: the owned file is not touched.
        assert_eq!(out.changed, 3, "first={first} {out:?}");
        let mode = fs::metadata(&owned).unwrap().mode() & 0o7777;
        assert_eq!(
            mode, 0o4755,
            "first={first}: an entry already owned is not touched"
        );
        assert_eq!(
            marker(&vol).as_deref(),
            Some(format!("{UID}:{GID}").as_bytes())
        );
    }
}
