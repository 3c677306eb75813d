//! The admin's TOML config (`Config::parse`). Any text: never a panic; an
//! accepted config obeys what `validate` promises; a refusal is a `failed`
//! error with a printable line.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use oci_volume_hook::input::annotations::{parse_spec, RequestSource};
use oci_volume_hook::config::{Config, Origin, MAX_CONFIG_VOLUMES, MAX_MOUNT_TIMEOUT};
use oci_volume_hook::error::Class;

fn absolute(p: &Path) -> bool {
    p.is_absolute() && !p.components().any(|c| c == Component::ParentDir)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/oci-volume-hook/config.toml");
    let c = match Config::parse(text, path) {
        Ok(c) => c,
        Err(e) => {
            ovh_fuzz::check_error(&e, Class::Failed, text);
            return;
        }
    };
    assert_eq!(c.origin, Origin::BuiltIn);
    assert!(absolute(&c.volumes_root) && c.volumes_root != Path::new("/"));
    assert!(absolute(&c.state_dir));
    assert!(c.allowed_host_paths.iter().all(|p| absolute(p)));
    assert!((1..=MAX_MOUNT_TIMEOUT).contains(&c.mount_timeout));
    assert!(c.volumes.len() <= MAX_CONFIG_VOLUMES);
    if let Some(l) = &c.log_level {
        assert!(l.parse::<log::LevelFilter>().is_ok(), "log_level {l:?}");
    }
    for s in &c.allowed_nfs_servers {
        assert!(!s.is_empty() && !s.contains(['/', ' ']), "nfs server {s:?}");
    }
    for (name, v) in &c.volumes {
        // Every admin-defined name is one an annotation can ask for.
        let r = parse_spec(&format!("{name}:/x"))
            .unwrap_or_else(|e| panic!("[volumes.{name:?}] accepted but unusable: {e}"));
        assert_eq!(r.source, RequestSource::Named(name.clone()));
        assert!(
            !(v.path.is_some() && v.nfs.is_some()),
            "{name:?}: path and nfs"
        );
        if let Some(p) = &v.path {
            assert!(absolute(p), "{name:?} path {p:?}");
        }
        if v.nfs.is_none() {
            assert!(v.options.is_none() && v.subdir.is_none() && v.mount_timeout.is_none());
        }
        if let Some(s) = &v.subdir {
            assert!(
                !s.as_os_str().is_empty()
                    && s.components().all(|c| matches!(c, Component::Normal(_))),
                "{name:?} subdir {s:?}"
            );
        }
        if let Some(t) = v.mount_timeout {
            assert!((1..=MAX_MOUNT_TIMEOUT).contains(&t));
        }
    }
});
