//! Binary tier: the built hook fed state JSON on stdin. Exit codes, the one
//! stderr line, silence on stdout, poststop idempotence. Most need no root.

mod common;

use common::*;

#[test]
fn malformed_state_is_invalid_with_one_line() {
    for (input, needle) in [
        (&b""[..], "stdin is empty"),
        (b"{not json", "not an OCI state"),
        (b"\x00\x01\x02binary", "not an OCI state"),
        (b"[1,2]", "not an OCI state"),
    ] {
        let r = run(
            &["--config", "/nonexistent-is-not-read-first", "prestart"],
            input,
        );
        assert_eq!(r.code, 2, "{r:?}", r = r.stderr);
        assert_eq!(r.stdout, "");
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.starts_with("oci-volume-hook: state invalid: "),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(needle), "{}", r.stderr);
    }
}

#[test]
fn huge_stdin_is_refused() {
    let big = vec![b' '; 2 << 20];
    let r = run(&["prestart"], &big);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("more than"), "{}", r.stderr);
}

#[test]
fn missing_bundle_fails_and_names_the_container() {
    let s = Scratch::new();
    let cfg = s.config("");
    let st = state(
        "0123456789abcdef0123",
        std::path::Path::new("/nonexistent/bundle"),
        Some(1),
        Some("a:/a"),
    );
    let r = run(&["--config", cfg.to_str().unwrap(), "prestart"], &st);
    assert_eq!(r.code, 1);
    assert_one_line(&r, "0123456789ab", "config.json");
}

#[test]
fn no_annotation_means_nothing_to_do() {
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    let r = run(
        &["--config", cfg.to_str().unwrap(), "prestart"],
        &state("c1", &b, Some(1), None),
    );
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    assert!(!s.path().join("vols").exists(), "nothing may be created");
}

#[test]
fn invalid_and_denied_requests_fail_before_touching_anything() {
    let s = Scratch::new();
    let cfg = s.config("auto_create = false");
    let b = s.bundle("b", None);
    for (ann, code, needle) in [
        ("myapp:/myapp:zap", 2, "unknown option \"zap\""),
        ("myapp:relative", 2, "not an absolute path"),
        ("myapp:/x/../etc", 2, "\"..\""),
        ("myapp:/proc/x", 2, "/proc"),
        ("-x:/y", 2, "volume name"),
        ("a:/d;b:/d", 2, "already used"),
        ("a:/d\u{7}", 2, "control character"),
        ("/etc:/x", 3, "denied by policy: host path /etc"),
        (
            "myapp:/myapp",
            3,
            "denied by policy: volume myapp is not defined",
        ),
        (
            "nfs://fs.example.com/e:/x",
            3,
            "denied by policy: NFS server fs.example.com",
        ),
    ] {
        let r = run(
            &["--config", cfg.to_str().unwrap(), "prestart"],
            &state("c2", &b, Some(1), Some(ann)),
        );
        assert_eq!(r.code, code, "{ann}: {}", r.stderr);
        assert_one_line(&r, "c2", needle);
        if code == 2 {
            assert!(
                !r.stderr.contains("denied"),
                "invalid must not read as a denial: {}",
                r.stderr
            );
        }
    }
    assert!(!s.path().join("vols").exists());
    assert!(!s.path().join("run").exists());
}

#[test]
fn huge_annotation_is_refused() {
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    let ann = "a:/b;".repeat(30_000);
    let r = run(
        &["--config", cfg.to_str().unwrap(), "prestart"],
        &state("c3", &b, Some(1), Some(&ann)),
    );
    assert_eq!(r.code, 2);
    assert_one_line(&r, "c3", "limit");
}

#[test]
fn config_errors_name_file_and_line() {
    let s = Scratch::new();
    let cfg = s.config("bogus_key = 1");
    let b = s.bundle("b", None);
    let r = run(
        &["--config", cfg.to_str().unwrap(), "prestart"],
        &state("c4", &b, Some(1), Some("a:/a")),
    );
    assert_eq!(r.code, 1);
    assert_one_line(&r, "c4", &format!("{}:3:", cfg.display()));
    let r = run(
        &["--config", "/nonexistent/x.toml", "prestart"],
        &state("c4", &b, Some(1), Some("a:/a")),
    );
    assert_eq!(r.code, 1, "an explicit config that is missing is an error");
}

#[test]
fn prestart_without_pid_fails_closed() {
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    for pid in [None, Some(0)] {
        let r = run(
            &["--config", cfg.to_str().unwrap(), "prestart"],
            &state("c5", &b, pid, Some("a:/a")),
        );
        assert_eq!(r.code, 1);
        assert_one_line(&r, "c5", "no container pid");
    }
}

#[test]
fn poststop_is_idempotent_and_needs_no_pid() {
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", Some("a:/a"));
    let c = cfg.to_str().unwrap();
    // crun: pid 0; runc/podman: no pid; no prior prestart; twice.
    for pid in [Some(0), None, None] {
        let r = run(&["--config", c, "poststop"], &state("c6", &b, pid, None));
        assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    }
    // A record from a prestart is removed, once.
    let rec = s.path().join("run/containers");
    std::fs::create_dir_all(&rec).unwrap();
    std::fs::write(
        rec.join("c6.json"),
        br#"{"id":"c6","bundle":"/b","root":"/b/rootfs","attached_at":1,"pid":5,"volumes":[]}"#,
    )
    .unwrap();
    let r = run(&["--config", c, "poststop"], &state("c6", &b, None, None));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!rec.join("c6.json").exists());
    // A malformed record is removed too, without failing the teardown.
    std::fs::write(rec.join("c6.json"), b"garbage").unwrap();
    let r = run(&["--config", c, "poststop"], &state("c6", &b, None, None));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert!(!rec.join("c6.json").exists());
    // A broken config does not fail a teardown either.
    let bad = s.path().join("bad.toml");
    std::fs::write(&bad, "nope = [").unwrap();
    let r = run(
        &["--config", bad.to_str().unwrap(), "poststop"],
        &state("c6", &b, None, None),
    );
    assert_eq!(r.code, 0);
}

#[test]
fn check_reports_and_exits_by_worst_decision() {
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", Some("myapp:/myapp"));
    let c = cfg.to_str().unwrap();
    let bs = b.to_str().unwrap();
    let r = run(&["--config", c, "check", "--bundle", bs], b"");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("volume \"myapp:/myapp\": allowed"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("would be created"), "{}", r.stdout);
    let r = run(
        &[
            "--config",
            c,
            "check",
            "--bundle",
            bs,
            "--annotation",
            "oci-volume-hook/volumes=/etc:/x",
        ],
        b"",
    );
    assert_eq!(r.code, 3);
    assert!(r.stdout.contains("denied by policy"), "{}", r.stdout);
    assert_eq!(r.stderr, "", "check's report is the message");
    let r = run(
        &[
            "--config",
            c,
            "check",
            "--bundle",
            bs,
            "--format",
            "json",
            "--annotation",
            "oci-volume-hook/volumes=a:/a;b:/b:zap",
        ],
        b"",
    );
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["volumes"][0]["decision"], "invalid");
    std::os::unix::fs::symlink("/etc", b.join("rootfs/evil")).unwrap();
    let r = run(
        &[
            "--config",
            c,
            "check",
            "--bundle",
            bs,
            "--annotation",
            "oci-volume-hook/volumes=a:/evil/x",
        ],
        b"",
    );
    // The rootfs has no /etc: a dangling symlink, refused.
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("/evil is a symlink in the image to /etc, which does not exist there"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("dangling"), "{}", r.stdout);
    // With /etc in the rootfs, it is followed inside the rootfs, as runc
    // and crun follow it; the report shows where the volume lands.
    std::fs::create_dir(b.join("rootfs/etc")).unwrap();
    let with = |ann: &str| {
        run(
            &[
                "--config",
                c,
                "check",
                "--bundle",
                bs,
                "--annotation",
                &format!("oci-volume-hook/volumes={ann}"),
            ],
            b"",
        )
    };
    let r = with("a:/evil/x");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("destination: /evil/x → /etc/x"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("would be created in the rootfs"),
        "{}",
        r.stdout
    );
    let r = with("a:/evil");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("destination: /evil → /etc"),
        "{}",
        r.stdout
    );
    assert!(!b.join("rootfs/etc/x").exists(), "check creates nothing");
    // The podman-4-safe option separator, in check too.
    let r = with("a:/data:ro+nosuid");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("options:     ro,nosuid,nodev,exec"),
        "{}",
        r.stdout
    );
    let r = with("a:/data:ro+zap");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stdout.contains("separated by +"), "{}", r.stdout);
    assert!(!s.path().join("vols").exists(), "check changes nothing");
}

#[test]
fn hostile_environment_and_fds_do_not_reach_the_hook() {
    // LD_PRELOAD pointing at garbage would crash a dynamic binary at load;
    // what we check is that our own code does not read the environment:
    // a hostile OCI_VOLUME_HOOK_* or PATH cannot change behaviour.
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    let out = std::process::Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "prestart"])
        .env("PATH", "/nonexistent")
        .env("RUST_LOG", "trace")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(&state("c7", &b, Some(1), None))?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn completions_and_help() {
    let r = run(&["completions", "bash"], b"");
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("oci-volume-hook"));
    let r = run(&["--help"], b"");
    assert!(r.stdout.contains("prestart") && r.stdout.contains("check"));
    let r = run(&["frobnicate"], b"");
    assert_eq!(r.code, 2);
}

#[test]
fn errors_reach_syslog_with_the_identifier() {
    if !need_root("errors_reach_syslog_with_the_identifier") {
        return;
    }
    let dev_log = std::path::Path::new("/dev/log");
    if dev_log.exists() {
        // A real syslog daemon owns it: check the journal by hand instead.
        eprintln!(
            "SKIP: errors_reach_syslog_with_the_identifier: /dev/log belongs to a running syslog"
        );
        return;
    }
    let sock = std::os::unix::net::UnixDatagram::bind(dev_log).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let s = Scratch::new();
    let cfg = s.config("");
    let b = s.bundle("b", None);
    let r = run(
        &["--config", cfg.to_str().unwrap(), "prestart"],
        &state("sysloggedcontainer", &b, Some(1), Some("/etc:/x")),
    );
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.contains("sysloggedco") {
            got.push(m);
            break;
        }
    }
    drop(sock);
    std::fs::remove_file(dev_log).unwrap();
    assert_eq!(r.code, 3);
    let line = r
        .stderr
        .trim_end()
        .strip_prefix("oci-volume-hook: ")
        .unwrap()
        .to_string();
    assert_eq!(got.len(), 1, "no syslog message; stderr was {}", r.stderr);
    assert!(got[0].contains("oci-volume-hook["), "tag: {}", got[0]);
    assert!(
        got[0].ends_with(&line),
        "syslog {:?} != stderr {:?}",
        got[0],
        line
    );
}

/// Runs in a child process (the test binary re-executed), so dropping
/// capabilities does not affect the other tests.
#[test]
fn capabilities_are_reduced_per_stage() {
    if std::env::var_os("OVH_CAPS_CHILD").is_some() {
        let stage = match std::env::var("OVH_CAPS_CHILD").unwrap().as_str() {
            "attach" => oci_volume_hook::hardening::CapProfile::Attach,
            _ => oci_volume_hook::hardening::CapProfile::Inspect,
        };
        oci_volume_hook::hardening::drop_capabilities(stage).unwrap();
        // Capabilities belong to a thread; libtest runs this test on its own thread.
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let field = |k: &str| {
            let v = status
                .lines()
                .find(|l| l.starts_with(k))
                .unwrap()
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string();
            u64::from_str_radix(&v, 16).unwrap()
        };
        println!(
            "CAPS {} {} {}",
            field("CapEff:"),
            field("CapPrm:"),
            field("CapBnd:")
        );
        return;
    }
    if !need_root("capabilities_are_reduced_per_stage") {
        return;
    }
    let caps = |stage: &str| -> (u64, u64, u64) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "capabilities_are_reduced_per_stage",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("OVH_CAPS_CHILD", stage)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.split_once("CAPS "))
            .unwrap_or_else(|| panic!("{text}"))
            .1;
        let v: Vec<u64> = line
            .split_whitespace()
            .take(3)
            .map(|x| x.parse().unwrap())
            .collect();
        (v[0], v[1], v[2])
    };
    const SYS_ADMIN: u64 = 1 << 21;
    const SYS_CHROOT: u64 = 1 << 18;
    const NET_ADMIN: u64 = 1 << 12;
    const SYS_MODULE: u64 = 1 << 16;
    const MKNOD: u64 = 1 << 27;
    let (eff, prm, bnd) = caps("attach");
    assert_eq!(eff, prm);
    assert!(
        eff & SYS_ADMIN != 0 && eff & SYS_CHROOT != 0,
        "attach keeps mount caps: {eff:x}"
    );
    for (cap, name) in [
        (NET_ADMIN, "NET_ADMIN"),
        (SYS_MODULE, "SYS_MODULE"),
        (MKNOD, "MKNOD"),
    ] {
        assert!(eff & cap == 0, "attach must drop {name}: {eff:x}");
        assert!(bnd & cap == 0, "bounding set must drop {name}: {bnd:x}");
    }
    assert_eq!(eff.count_ones(), 11, "{eff:x}");
    let (eff, _, _) = caps("inspect");
    assert!(
        eff & SYS_CHROOT == 0,
        "inspect cannot enter namespaces: {eff:x}"
    );
    assert_eq!(eff.count_ones(), 4, "{eff:x}");
}
