//! Helpers shared by the integration tests: run the built binary with a
//! state on stdin, make bundles and configs in temporary directories.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_oci-volume-hook");

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Skip a test that needs root: loudly, and never in CI.
pub fn need_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root, and CI must run every test");
    }
    eprintln!("SKIP: {test}: needs root");
    false
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the hook");
    child.stdin.take().unwrap().write_all(stdin).ok();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A scratch area on a real file system (not tmpfs: /var/tmp).
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("ovh-test.")
                .tempdir_in("/var/tmp")
                .unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a config (mode 0644) with volumes_root and state_dir inside the scratch dir.
    pub fn config(&self, extra: &str) -> PathBuf {
        let p = self.path().join("config.toml");
        let text = format!(
            "volumes_root = \"{}\"\nstate_dir = \"{}\"\n{extra}\n",
            self.path().join("vols").display(),
            self.path().join("run").display()
        );
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A bundle with a config.json (rootfs at ./rootfs, created) and annotations.
    pub fn bundle(&self, name: &str, annotation: Option<&str>) -> PathBuf {
        let b = self.path().join(name);
        std::fs::create_dir_all(b.join("rootfs")).unwrap();
        let ann = match annotation {
            Some(a) => serde_json::json!({ "oci-volume-hook/volumes": a }),
            None => serde_json::json!({}),
        };
        let cfg = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": { "path": "rootfs" },
            "process": { "user": { "uid": 0, "gid": 0 }, "args": ["/bin/sh"] },
            "annotations": ann,
        });
        std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
        b
    }
}

pub fn state(id: &str, bundle: &Path, pid: Option<i32>, annotation: Option<&str>) -> Vec<u8> {
    let mut s = serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "id": id,
        "status": "creating",
        "bundle": bundle,
    });
    if let Some(p) = pid {
        s["pid"] = p.into();
    }
    if let Some(a) = annotation {
        s["annotations"] = serde_json::json!({ "oci-volume-hook/volumes": a });
    }
    serde_json::to_vec(&s).unwrap()
}

/// Assert the hook-mode contract: nothing on stdout, at most one stderr line
/// in the documented shape.
pub fn assert_one_line(r: &Run, id12: &str, needle: &str) {
    assert_eq!(r.stdout, "", "hook mode printed on stdout");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want one stderr line, got {:?}", r.stderr);
    assert!(
        lines[0].starts_with(&format!("oci-volume-hook: {id12}: ")),
        "bad prefix: {}",
        lines[0]
    );
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
}

/// A stand-in container: a process in its own private mount namespace.
pub struct Container(pub Child);

impl Container {
    pub fn start() -> Container {
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "120"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) is needed");
        // Wait until the child has exec'd sleep inside its new namespace.
        let pid = child.id();
        let container = Container(child);
        for _ in 0..200 {
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" && ns != std::fs::read_link("/proc/self/ns/mnt").ok() {
                return container;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the stand-in container did not start");
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// (mount point, options) of every mount in the container's namespace.
    pub fn mounts(&self) -> Vec<(PathBuf, String)> {
        std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid()))
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (PathBuf::from(f[4]), f[5].to_string())
            })
            .collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn prestart(cfg: &Path, id: &str, bundle: &Path, pid: i32, ann: &str) -> Run {
    run(
        &["--config", cfg.to_str().unwrap(), "prestart"],
        &state(id, bundle, Some(pid), Some(ann)),
    )
}
