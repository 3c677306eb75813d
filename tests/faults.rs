//! Fault tier (root): a hook killed at any point, a full /run, a read-only
//! volumes root, and many start/stop cycles. Each leaves a state the next
//! start handles, and never a started container without its volume.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, opts: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn records(s: &Scratch) -> Vec<String> {
    std::fs::read_dir(s.path().join("run/containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// Host mounts under `dir`.
fn host_mounts(dir: &Path) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| Path::new(m).starts_with(dir))
        })
        .count()
}

/// These tests mount and count host-wide state: run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn sigkill_at_any_point_leaves_a_state_the_next_start_handles() {
    if !need_root("sigkill_at_any_point_leaves_a_state_the_next_start_handles") {
        return;
    }
    let _serial = serial();
    let s = Scratch::new();
    let cfg = s.config("[volumes.db]\naccess = \"exclusive\"\n");
    let b = s.bundle("b", None);
    let mounts_before = host_mounts(s.path());
    let mut killed = 0;
    for i in 0..60u64 {
        let c = Container::start();
        let mut child = Command::new(BIN)
            .args(["--config", cfg.to_str().unwrap(), "prestart"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(&state(
                    &format!("k{i}"),
                    &b,
                    Some(c.pid()),
                    Some("db:/db;scratch:/s"),
                ))
                .unwrap();
        }
        // Spread the kills over the hook's life (it takes about 1-3 ms).
        std::thread::sleep(Duration::from_micros((i * 97) % 3000));
        let _ = child.kill();
        if !child.wait().unwrap().success() {
            killed += 1;
        }
        // The runtime sees a failed hook and destroys the container.
        drop(c);
    }
    assert!(killed > 10, "the kills must land mid-run (killed {killed})");
    assert_eq!(
        host_mounts(s.path()),
        mounts_before,
        "a mount leaked to the host"
    );
    // The next container gets the exclusive volume: dead holders' claims are recovered.
    let c = Container::start();
    let r = prestart(&cfg, "after-kills", &b, c.pid(), "db:/db;scratch:/s");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(c.mounts().iter().any(|(m, _)| m == &b.join("rootfs/db")));
    assert_eq!(records(&s), vec!["after-kills.json".to_string()]);
    eprintln!("faults: 60 hooks SIGKILLed at 0-3 ms ({killed} died mid-run); next start attached, 0 stray records, 0 host mounts");
}

#[test]
fn full_run_fails_closed_then_recovers() {
    if !need_root("full_run_fails_closed_then_recovers") {
        return;
    }
    let _serial = serial();
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    let run_dir = s.path().join("run");
    let _t = Tmpfs::mount(&run_dir, "size=64k,nr_inodes=16");
    std::fs::create_dir_all(run_dir.join("containers")).unwrap();
    // Fill it: data and inodes.
    let _ = std::fs::write(run_dir.join("filler"), vec![0u8; 1 << 20]);
    for i in 0..32 {
        let _ = std::fs::write(run_dir.join(format!("f{i}")), b"");
    }
    let c = Container::start();
    let r = prestart(&cfg, "full", &b, c.pid(), "v:/v");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_one_line(&r, "full", "No space left on device");
    assert!(
        r.stderr.contains("must be writable and not full"),
        "{}",
        r.stderr
    );
    assert!(
        c.mounts()
            .iter()
            .all(|(m, _)| !m.starts_with(b.join("rootfs"))),
        "nothing attached when the claim cannot be recorded"
    );
    for e in std::fs::read_dir(&run_dir).unwrap().flatten() {
        if e.file_name() != "containers" {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let r = prestart(&cfg, "full", &b, c.pid(), "v:/v");
    assert_eq!(r.code, 0, "after freeing space: {}", r.stderr);
}

#[test]
fn read_only_volumes_root() {
    if !need_root("read_only_volumes_root") {
        return;
    }
    let _serial = serial();
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    let vols = s.path().join("vols");
    std::fs::create_dir_all(vols.join("existing")).unwrap();
    std::fs::write(vols.join("existing/data"), "kept").unwrap();
    let ro = Command::new("mount")
        .args(["--bind", "-o", "ro"])
        .arg(&vols)
        .arg(&vols)
        .status()
        .unwrap();
    assert!(ro.success());
    let _t = Tmpfs(vols.clone()); // unmounts the ro bind on drop
    let c = Container::start();
    let r = prestart(&cfg, "rofs", &b, c.pid(), "new:/new");
    assert_eq!(r.code, 1);
    assert_one_line(&r, "rofs", "read-only");
    let c = Container::start();
    let r = prestart(&cfg, "rofs2", &b, c.pid(), "existing:/e");
    assert_eq!(r.code, 0, "an existing volume still attaches: {}", r.stderr);
}

#[test]
fn two_hundred_cycles_leave_nothing_behind() {
    if !need_root("two_hundred_cycles_leave_nothing_behind") {
        return;
    }
    let _serial = serial();
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    let mounts_before = host_mounts(s.path());
    let fds_before = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let t0 = std::time::Instant::now();
    for i in 0..200 {
        let c = Container::start();
        let id = format!("cycle{i}");
        let r = prestart(&cfg, &id, &b, c.pid(), "data:/data;logs:/logs:ro");
        assert_eq!(r.code, 0, "{}", r.stderr);
        drop(c);
        let r = run(
            &["--config", cfg.to_str().unwrap(), "poststop"],
            &state(&id, &b, None, None),
        );
        assert_eq!(r.code, 0);
    }
    let elapsed = t0.elapsed();
    assert_eq!(records(&s), Vec::<String>::new(), "stray records");
    assert_eq!(host_mounts(s.path()), mounts_before, "stray mounts");
    assert_eq!(
        std::fs::read_dir("/proc/self/fd").unwrap().count(),
        fds_before,
        "fds leaked"
    );
    eprintln!("cycles: 200 start/stop cycles in {elapsed:?}: 0 records, 0 mounts, 0 fds left");
}
