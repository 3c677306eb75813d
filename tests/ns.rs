//! Namespace tier (root): the hook attaches volumes into a real private
//! mount namespace, as a runtime's createRuntime would, and a process that
//! swaps a directory for a symlink while the hook runs (the CVE-2021-30465
//! pattern) never gets a mount or a mkdir outside the rootfs.

mod common;

use std::path::Path;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;

#[test]
fn attaches_into_the_container_namespace_only() {
    if !need_root("attaches_into_the_container_namespace_only") {
        return;
    }
    let s = Scratch::new();
    let file = s.path().join("motd");
    std::fs::write(&file, "hi").unwrap();
    let cfg = s.config(&format!("[volumes.motd]\npath = \"{}\"\n", file.display()));
    let b = s.bundle("b", None);
    let root = b.join("rootfs");
    let c = Container::start();
    let r = prestart(
        &cfg,
        "ns1",
        &b,
        c.pid(),
        "data:/data;logs:/data/logs:ro,noexec;motd:/etc/motd:ro",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let mounts = c.mounts();
    let find = |p: &str| {
        mounts
            .iter()
            .find(|(m, _)| m == &root.join(p))
            .map(|(_, o)| o.clone())
    };
    let data = find("data").expect("data mounted");
    assert!(data.starts_with("rw,nosuid,nodev"), "{data}");
    let logs = find("data/logs").expect("logs mounted on top of data");
    assert!(logs.starts_with("ro,nosuid,nodev,noexec"), "{logs}");
    assert!(find("etc/motd").expect("file volume").starts_with("ro"));
    // The mount point for the nested volume was made inside the data volume.
    assert!(s.path().join("vols/data/logs").is_dir());
    // Invisible on the host.
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains(root.to_str().unwrap()),
        "mount leaked to the host"
    );
    // The record exists; poststop removes it.
    assert!(s.path().join("run/containers/ns1.json").exists());
    let r = run(
        &["--config", cfg.to_str().unwrap(), "poststop"],
        &state("ns1", &b, None, None),
    );
    assert_eq!(r.code, 0);
    assert!(!s.path().join("run/containers/ns1.json").exists());
}

/// The host's /etc as a listing of names, to compare before and after.
fn host_etc() -> Vec<std::ffi::OsString> {
    let mut v: Vec<_> = std::fs::read_dir("/etc")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    v.sort();
    v
}

#[test]
fn symlinks_in_the_image_resolve_inside_the_rootfs_and_the_host_is_unchanged() {
    if !need_root("symlinks_in_the_image_resolve_inside_the_rootfs_and_the_host_is_unchanged") {
        return;
    }
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    let root = b.join("rootfs");
    let escape = s.path().join("escape");
    let sym =
        |target: &str, link: &str| std::os::unix::fs::symlink(target, root.join(link)).unwrap();
    for d in ["etc", "run", "tmp", "dir", "var", "proc"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    std::fs::write(root.join("etc/hostname"), "rootfs-etc\n").unwrap();
    sym("/etc", "abs");
    sym(
        &("../../../../../../../../../..".to_string() + escape.to_str().unwrap()),
        "rel",
    );
    sym("/", "dir/up");
    sym("/run", "var/run");
    sym("../run", "var/run2");
    sym("/run/lock", "var/lock");
    sym("/", "myself");
    sym("/proc", "p");
    let etc_before = host_etc();
    let host_mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounted_at = |c: &Container, p: &Path| c.mounts().iter().any(|(m, _)| m == p);

    // Followed inside the rootfs: absolute (to the container's own /etc,
    // never the host's), through a parent, to "/" of the rootfs, relative.
    for (i, (dest, at)) in [
        ("/abs", "etc"),
        ("/abs/x", "etc/x"),
        ("/dir/up/tmp", "tmp"),
        ("/var/run/app", "run/app"),
        ("/var/run2/app2", "run/app2"),
    ]
    .into_iter()
    .enumerate()
    {
        let c = Container::start();
        let id = format!("follow{i}");
        let r = prestart(&cfg, &id, &b, c.pid(), &format!("v{i}:{dest}"));
        assert_eq!(r.code, 0, "{dest}: {}", r.stderr);
        assert!(
            mounted_at(&c, &root.join(at)),
            "{dest}: mounted at ROOTFS/{at} in the container's namespace: {:?}",
            c.mounts()
        );
        assert!(
            c.mounts()
                .iter()
                .all(|(m, _)| m.starts_with(&root) || !m.ends_with(at)),
            "{dest}: nothing mounted outside the rootfs"
        );
        let _ = run(
            &["--config", cfg.to_str().unwrap(), "poststop"],
            &state(&id, &b, None, None),
        );
    }
    assert!(
        root.join("etc/x").is_dir(),
        "/abs/x made in the rootfs's /etc"
    );
    assert!(root.join("run/app").is_dir() && root.join("run/app2").is_dir());
    assert!(
        root.join("var/run").is_symlink(),
        "the image's symlink is left alone"
    );

    // Refused: dangling symlinks (absolute-and-out-of-the-rootfs, or just
    // missing), the container's root, /proc of the rootfs.
    for (dest, words) in [
        (
            "/rel/x/y",
            vec!["/rel is a symlink in the image to ../../", "does not exist"],
        ),
        (
            "/var/lock/app",
            vec![
                "/var/lock is a symlink in the image to /run/lock",
                "dangling",
            ],
        ),
        ("/myself", vec!["/myself → /", "container's root"]),
        (
            "/p/x",
            vec!["/p/x → /proc/x", "/proc, which the runtime owns"],
        ),
    ] {
        let c = Container::start();
        let r = prestart(&cfg, "ns2", &b, c.pid(), &format!("v:{dest}"));
        assert_eq!(r.code, 1, "{dest}: {}", r.stderr);
        for w in words {
            assert_one_line(&r, "ns2", w);
        }
        assert!(
            c.mounts().iter().all(|(m, _)| !m.starts_with(&root)),
            "{dest}: nothing mounted"
        );
        assert!(
            !s.path().join("run/containers/ns2.json").exists(),
            "no record for a failed start"
        );
    }
    // Nothing made through a dangling symlink, in the rootfs or outside.
    assert!(!escape.exists(), "created outside the rootfs");
    assert!(
        !root.join(escape.strip_prefix("/").unwrap()).exists(),
        "created through the dangling symlink inside the rootfs"
    );
    assert!(!root.join("run/lock").exists(), "created through /var/lock");
    assert!(!root.join("proc/x").exists());
    // The host is unchanged: its /etc, and no mount of ours in its namespace.
    assert_eq!(host_etc(), etc_before, "the host's /etc listing");
    assert!(!Path::new("/etc/x").exists());
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_mounts.contains(root.to_str().unwrap()),
        "mount leaked to the host"
    );
    let etc_mounts = |m: &str| {
        m.lines()
            .filter(|l| l.split(' ').nth(4) == Some("/etc"))
            .count()
    };
    assert_eq!(
        etc_mounts(&host_mounts),
        etc_mounts(&host_mounts_before),
        "nothing mounted on the host's /etc"
    );
}

#[test]
fn symlink_exchange_race_never_escapes() {
    if !need_root("symlink_exchange_race_never_escapes") {
        return;
    }
    let iterations: usize = std::env::var("OVH_RACE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    let root = b.join("rootfs");
    let outside = s.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::create_dir(root.join("swap")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("swap-link")).unwrap();
    // Followed inside the rootfs, the symlink names ROOTFS/<outside>: on
    // odd iterations that exists (the hook may attach there, inside the
    // rootfs), on even ones it does not (a dangling symlink: refused).
    let mirror = root.join(outside.strip_prefix("/").unwrap());
    // The attacker: exchange /swap (a directory) and /swap-link (a symlink
    // out of the rootfs) as fast as it can.
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let stop = stop.clone();
        let root = root.clone();
        std::thread::spawn(move || {
            let dir = rustix::fs::open(
                &root,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .unwrap();
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    &dir,
                    "swap",
                    &dir,
                    "swap-link",
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let (mut attached, mut refused, mut escapes) = (0, 0, 0);
    for i in 0..iterations {
        if i % 2 == 1 {
            std::fs::create_dir_all(&mirror).unwrap();
        }
        let c = Container::start();
        let r = prestart(&cfg, &format!("race{i}"), &b, c.pid(), "v:/swap/sub");
        match r.code {
            0 => attached += 1,
            1 => refused += 1,
            other => panic!("unexpected exit {other}: {}", r.stderr),
        }
        // Every mount must be inside the rootfs, on the real directory.
        for (m, _) in c.mounts() {
            if m.ends_with("sub") && !m.starts_with(&root) {
                escapes += 1;
            }
        }
        if outside.join("sub").exists() {
            escapes += 1;
            std::fs::remove_dir(outside.join("sub")).ok();
        }
        if i % 2 == 0 && mirror.exists() {
            // Never created through the dangling symlink.
            escapes += 1;
        }
        drop(c);
        if mirror.exists() {
            std::fs::remove_dir(mirror.join("sub")).ok();
            std::fs::remove_dir(&mirror).unwrap();
        }
        let _ = run(
            &["--config", cfg.to_str().unwrap(), "poststop"],
            &state(&format!("race{i}"), &b, None, None),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = attacker.join().unwrap();
    eprintln!("race: {iterations} iterations, {swaps} swaps, {attached} attached, {refused} refused, {escapes} escapes");
    assert_eq!(escapes, 0);
    assert_eq!(attached + refused, iterations);
    assert!(
        swaps > iterations as u64,
        "the attacker must actually have raced"
    );
}

/// Start `n` hooks at once, each for its own stand-in container.
fn concurrent_prestarts(
    cfg: &Path,
    b: &Path,
    prefix: &str,
    n: usize,
    ann: &str,
) -> (Vec<Container>, Vec<Run>) {
    let containers: Vec<Container> = (0..n).map(|_| Container::start()).collect();
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (cfg, b, ann, pid, barrier) = (
                cfg.to_path_buf(),
                b.to_path_buf(),
                ann.to_string(),
                c.pid(),
                barrier.clone(),
            );
            let id = format!("{prefix}{i}");
            std::thread::spawn(move || {
                barrier.wait();
                prestart(&cfg, &id, &b, pid, &ann)
            })
        })
        .collect();
    let runs = handles.into_iter().map(|h| h.join().unwrap()).collect();
    (containers, runs)
}

#[test]
fn twenty_at_once_on_one_auto_created_volume() {
    if !need_root("twenty_at_once_on_one_auto_created_volume") {
        return;
    }
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    let (containers, runs) = concurrent_prestarts(&cfg, &b, "auto", 20, "fresh:/data");
    let ok = runs.iter().filter(|r| r.code == 0).count();
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(ok, 20);
    let vols: Vec<_> = std::fs::read_dir(s.path().join("vols")).unwrap().collect();
    assert_eq!(vols.len(), 1, "exactly one volume directory");
    for c in &containers {
        assert!(c.mounts().iter().any(|(m, _)| m == &b.join("rootfs/data")));
    }
    eprintln!("auto-create: 20 concurrent starts, {ok} attached, 1 volume directory");
}

#[test]
fn exclusive_volume_has_exactly_one_writer_and_recovers_dead_holders() {
    if !need_root("exclusive_volume_has_exactly_one_writer_and_recovers_dead_holders") {
        return;
    }
    let s = Scratch::new();
    let cfg = s.config("[volumes.db]\naccess = \"exclusive\"\n");
    let b = s.bundle("b", None);
    let (mut containers, runs) = concurrent_prestarts(&cfg, &b, "excl", 20, "db:/db");
    let winners: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].code == 0).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one must win: {:?}",
        runs.iter().map(|r| r.code).collect::<Vec<_>>()
    );
    for (i, r) in runs.iter().enumerate() {
        if i != winners[0] {
            assert_eq!(r.code, 1);
            assert!(
                r.stderr.contains("is exclusive and container"),
                "{}",
                r.stderr
            );
            assert!(
                r.stderr.contains(&format!("excl{}", winners[0])),
                "names the holder: {}",
                r.stderr
            );
        }
    }
    let records = std::fs::read_dir(s.path().join("run/containers"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(records, 1, "losers leave no record");
    eprintln!("exclusive: 20 concurrent starts, 1 attached, 19 refused");
    // The holder dies without a poststop (crashed runtime): its claim is recovered.
    let holder = containers.remove(winners[0]);
    drop(holder);
    let c = Container::start();
    let r = prestart(&cfg, "after", &b, c.pid(), "db:/db");
    assert_eq!(r.code, 0, "stale claim not recovered: {}", r.stderr);
    assert!(!s
        .path()
        .join(format!("run/containers/excl{}.json", winners[0]))
        .exists());
}

#[test]
fn volumes_lists_running_users() {
    if !need_root("volumes_lists_running_users") {
        return;
    }
    let s = Scratch::new();
    let cfg = s.config("[volumes.db]\naccess = \"exclusive\"\n[volumes.logs]\npath = \"/var/tmp\"\nread_only = true\n");
    let b = s.bundle("b", None);
    let c = Container::start();
    let r = prestart(&cfg, "lister-0123456789", &b, c.pid(), "db:/db;app:/app:ro");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = run(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "volumes",
            "--format",
            "json",
            "--size",
        ],
        b"",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let by_name = |n: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} missing: {v}"))
    };
    let db = by_name("db");
    assert_eq!(db["backend"], "managed");
    assert_eq!(db["access"], "exclusive");
    assert_eq!(db["containers"][0]["id"], "lister-0123456789");
    assert!(db["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(by_name("app")["containers"][0]["read_only"], true);
    assert_eq!(by_name("logs")["backend"], "bind");
    assert_eq!(by_name("logs")["containers"].as_array().unwrap().len(), 0);
    let out = run(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "volumes",
            "inspect",
            "db",
        ],
        b"",
    );
    assert!(
        out.stdout.contains("container:  lister-01234 on /db (rw)"),
        "{}",
        out.stdout
    );
    // Once the container is gone, nobody uses it.
    drop(c);
    let out = run(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "volumes",
            "inspect",
            "db",
        ],
        b"",
    );
    assert!(
        out.stdout.contains("containers: none running"),
        "{}",
        out.stdout
    );
    let out = run(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "volumes",
            "inspect",
            "nope",
        ],
        b"",
    );
    assert_eq!(out.code, 1);
}
