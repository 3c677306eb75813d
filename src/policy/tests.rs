use super::*;
use crate::config::{MountOption, Origin, VolumeConfig};
use crate::error::Class;
use crate::input::annotations::parse_spec;
use std::path::Path;

fn config(dir: &Path) -> Config {
    let mut c = Config {
        volumes_root: dir.join("vols"),
        origin: Origin::File("/etc/oci-volume-hook/config.toml".into()),
        ..Config::default()
    };
    c.volumes.insert(
        "logs".into(),
        VolumeConfig {
            path: Some(dir.join("logs")),
            read_only: true,
            ..Default::default()
        },
    );
    c
}

fn go(c: &Config, spec: &str) -> Result<ResolvedVolume, HookError> {
    resolve(c, &parse_spec(spec).unwrap())
}

#[test]
fn named_volume_auto_create_and_admin_volume() {
    let t = tempfile::tempdir().unwrap();
    let mut c = config(t.path());
    let r = go(&c, "myapp:/myapp").unwrap();
    assert_eq!(
        r.source,
        ResolvedSource::Managed {
            root: t.path().join("vols"),
            name: "myapp".into(),
            auto_create: true
        }
    );
    assert!(r.rule.contains("auto_create"));
    let r = go(&c, "logs:/var/log:rw").unwrap();
    assert!(r.options.read_only, "admin read_only must win over rw");
    assert!(r.rule.contains("[volumes.logs]"));
    c.auto_create = false;
    let e = go(&c, "myapp:/myapp").unwrap_err();
    assert_eq!(e.class, Class::Denied);
    assert!(e.to_string().contains("auto_create = false"), "{e}");
    assert!(
        e.to_string().contains("/etc/oci-volume-hook/config.toml"),
        "{e}"
    );
    std::fs::create_dir_all(t.path().join("vols/myapp")).unwrap();
    assert!(go(&c, "myapp:/myapp")
        .unwrap()
        .rule
        .contains("existing volume"));
}

#[test]
fn shared_volumes_walk_every_start_unless_the_admin_says_otherwise() {
    let t = tempfile::tempdir().unwrap();
    let mut c = config(t.path());
    assert_eq!(
        go(&c, "v:/v:z").unwrap().relabel_policy,
        RelabelPolicy::Always
    );
    assert_eq!(
        go(&c, "v:/v:Z").unwrap().relabel_policy,
        RelabelPolicy::OnChange
    );
    c.relabel = Some(RelabelPolicy::OnChange);
    assert_eq!(
        go(&c, "v:/v:z").unwrap().relabel_policy,
        RelabelPolicy::OnChange
    );
    c.relabel = None;
    c.volumes.insert(
        "w".into(),
        VolumeConfig {
            relabel: Some(RelabelPolicy::OnChange),
            ..Default::default()
        },
    );
    assert_eq!(
        go(&c, "w:/w:z").unwrap().relabel_policy,
        RelabelPolicy::OnChange
    );
}

#[test]
fn selinux_admin_default_and_lock() {
    use crate::config::{RelabelPolicy, SelinuxMode};
    use crate::input::annotations::Relabel;
    let t = tempfile::tempdir().unwrap();
    let mut c = config(t.path());
    c.relabel = Some(RelabelPolicy::Always);
    let vol = |mode, locked| VolumeConfig {
        selinux: Some(mode),
        selinux_locked: locked,
        ..Default::default()
    };
    c.volumes
        .insert("db".into(), vol(SelinuxMode::Private, true));
    c.volumes
        .insert("web".into(), vol(SelinuxMode::Private, false));
    c.volumes.insert(
        "cache".into(),
        VolumeConfig {
            selinux: Some(SelinuxMode::None),
            selinux_locked: true,
            relabel: Some(RelabelPolicy::OnChange),
            ..Default::default()
        },
    );
    // The admin default applies when the annotation says nothing.
    let r = go(&c, "db:/db").unwrap();
    assert_eq!(r.options.relabel, Some(Relabel::Private));
    assert!(r.rule.contains("selinux = \"private\""), "{}", r.rule);
    assert_eq!(r.relabel_policy, RelabelPolicy::Always);
    // Locked: z would weaken private.
    let e = go(&c, "db:/db:z").unwrap_err();
    assert_eq!(e.class, Class::Denied);
    let s = e.to_string();
    assert!(
        s.contains("[volumes.db]") && s.contains("selinux_locked = true"),
        "{s}"
    );
    assert!(s.contains("/etc/oci-volume-hook/config.toml"), "{s}");
    assert_eq!(
        go(&c, "db:/db:Z").unwrap().options.relabel,
        Some(Relabel::Private)
    );
    // Not locked: the annotation wins.
    assert_eq!(
        go(&c, "web:/w:z").unwrap().options.relabel,
        Some(Relabel::Shared)
    );
    // Strengthening a locked "none" is fine; the volume's own relabel wins.
    let r = go(&c, "cache:/c:Z").unwrap();
    assert_eq!(r.options.relabel, Some(Relabel::Private));
    assert_eq!(r.relabel_policy, RelabelPolicy::OnChange);
    assert_eq!(go(&c, "cache:/c").unwrap().options.relabel, None);
    // No admin entry: the annotation alone, the top-level relabel.
    let r = go(&c, "other:/o:z").unwrap();
    assert_eq!(r.options.relabel, Some(Relabel::Shared));
    assert_eq!(r.relabel_policy, RelabelPolicy::Always);
    assert_eq!(go(&c, "other:/o").unwrap().options.relabel, None);
}

#[test]
fn host_paths_are_denied_by_default() {
    let t = tempfile::tempdir().unwrap();
    let c = config(t.path());
    let e = go(&c, "/etc:/x").unwrap_err();
    assert_eq!(e.class, Class::Denied);
    let s = e.to_string();
    assert!(
        s.starts_with("volume \"/etc:/x\" denied by policy: host path /etc"),
        "{s}"
    );
    // A missing path outside the allowlist is a denial, not "not found".
    assert_eq!(
        go(&c, "/nonexistent/x:/x").unwrap_err().class,
        Class::Denied
    );
}

/// Security #12 item 4: an entry that is (or leads through) a symlink is
/// never followed, whatever its target.
#[test]
fn an_allowed_entry_through_a_symlink_is_refused() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("real/app")).unwrap();
    std::os::unix::fs::symlink("/etc", t.path().join("etc-link")).unwrap();
    std::os::unix::fs::symlink(t.path().join("real"), t.path().join("real-link")).unwrap();
    let mut c = config(t.path());
    c.allowed_host_paths = vec![t.path().join("etc-link"), t.path().join("real-link")];
    for asked in ["etc-link/ssl", "etc-link", "real-link/app"] {
        let e = go(&c, &format!("{}:/data", t.path().join(asked).display())).unwrap_err();
        assert_eq!(e.class, Class::Denied, "{asked}: {e}");
        assert!(
            e.to_string().contains("leads through a symlink"),
            "{asked}: {e}"
        );
    }
    // The real path, written as it is, is fine.
    c.allowed_host_paths = vec![t.path().join("real")];
    assert!(go(
        &c,
        &format!("{}:/data", t.path().join("real/app").display())
    )
    .is_ok());
}

#[test]
fn host_paths_resolve_symlinks_before_the_check() {
    let t = tempfile::tempdir().unwrap();
    let export = t.path().join("export");
    std::fs::create_dir_all(export.join("app")).unwrap();
    std::os::unix::fs::symlink("/etc", export.join("evil")).unwrap();
    std::os::unix::fs::symlink(export.join("app"), t.path().join("outside-link")).unwrap();
    let mut c = config(t.path());
    c.allowed_host_paths = vec![export.clone()];
    let ok = go(&c, &format!("{}:/data", export.join("app").display())).unwrap();
    assert!(matches!(ok.source, ResolvedSource::Host { .. }));
    let e = go(&c, &format!("{}:/data", export.join("evil").display())).unwrap_err();
    assert_eq!(e.class, Class::Denied);
    assert!(e.to_string().contains("resolves to /etc"), "{e}");
    // A link from outside that points inside is judged by where it points.
    assert!(go(
        &c,
        &format!("{}:/data", t.path().join("outside-link").display())
    )
    .is_ok());
    // A missing path inside the allowlist is a failure that says so.
    let e = go(&c, &format!("{}:/data", export.join("nope").display())).unwrap_err();
    assert_eq!(e.class, Class::Failed);
    // A prefix that is not a path boundary does not count.
    std::fs::create_dir_all(t.path().join("exporter")).unwrap();
    let e = go(
        &c,
        &format!("{}:/data", t.path().join("exporter").display()),
    )
    .unwrap_err();
    assert_eq!(e.class, Class::Denied);
}

#[test]
fn nfs_volumes_resolve_and_nfs_urls_need_the_allowlist() {
    let t = tempfile::tempdir().unwrap();
    let c = Config::parse(
        r#"
mount_timeout = 7
[volumes.shared-logs]
nfs = "fs.example.com:/exports/logs"
options = "vers=4.1,hard,timeo=600"
subdir = "app1"
[volumes.v3]
nfs = "10.0.0.5:/srv/nfs"
options = "vers=3,nolock"
mount_timeout = 3
read_only = true
"#,
        Path::new("/etc/oci-volume-hook/config.toml"),
    )
    .unwrap();
    let mut c = Config {
        volumes_root: t.path().join("vols"),
        ..c
    };
    let r = go(&c, "shared-logs:/var/log/app:ro").unwrap();
    let ResolvedSource::Nfs(n) = &r.source else {
        panic!("{r:?}")
    };
    assert_eq!(n.display(), "fs.example.com:/exports/logs/app1");
    assert_eq!(
        (n.timeout, n.options.version),
        (7, crate::config::nfs::Version::V4_1)
    );
    assert!(r.rule.contains("[volumes.shared-logs]"));
    let r = go(&c, "v3:/data").unwrap();
    let ResolvedSource::Nfs(n) = &r.source else {
        panic!("{r:?}")
    };
    assert_eq!(n.timeout, 3);
    assert!(n.timeout_rule.contains("[volumes.v3] mount_timeout"));
    assert!(r.options.read_only);
    // nfs:// is denied by default, allowed by the allowlist.
    let e = go(&c, "nfs://fs.example.com/exports/x:/x").unwrap_err();
    assert_eq!(e.class, Class::Denied);
    c.allowed_nfs_servers = vec!["fs.example.com".into()];
    let r = go(&c, "nfs://fs.example.com:2050/exports/x:/x").unwrap();
    let ResolvedSource::Nfs(n) = &r.source else {
        panic!("{r:?}")
    };
    assert_eq!(
        (n.port, n.export.as_path()),
        (Some(2050), Path::new("/exports/x"))
    );
    assert!(r.rule.contains("allowed_nfs_servers"));
}

fn parse_config(dir: &Path, text: &str) -> Config {
    let c = Config::parse(text, Path::new("/etc/oci-volume-hook/config.toml")).unwrap();
    Config {
        volumes_root: dir.join("vols"),
        state_dir: dir.join("state"),
        origin: Origin::File("/etc/oci-volume-hook/config.toml".into()),
        ..c
    }
}

/// A denial, with its message and hint.
fn denied(c: &Config, spec: &str) -> (String, String) {
    let e = go(c, spec).unwrap_err();
    assert_eq!(e.class, Class::Denied, "{spec}: {e}");
    assert_eq!(e.exit_code(), 3);
    let s = e.to_string();
    assert!(s.contains("/etc/oci-volume-hook/config.toml"), "{s}");
    (s, e.hint.unwrap_or_default())
}

#[test]
fn idmap_only_where_no_other_host_user_reaches_the_files() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("export/app")).unwrap();
    let c = parse_config(
        t.path(),
        &format!(
            "allowed_host_paths = [\"{0}/export\"]\n[volumes.adm]\npath = \"{0}/adm\"\n[volumes.opt]\npath = \"{0}/opt\"\nallow_idmap = true\n[volumes.mine]\n",
            t.path().display()
        ),
    );
    // Managed volumes, with a table or without: allowed.
    assert!(go(&c, "mine:/m:idmap").unwrap().options.idmap);
    assert!(go(&c, "other:/o:idmap").unwrap().options.idmap);
    // An admin path: only with the admin's opt-in.
    let (s, hint) = denied(&c, "adm:/v:idmap");
    assert!(
        s.contains("option idmap") && s.contains("[volumes.adm]"),
        "{s}"
    );
    assert!(s.contains("host uid 0") && s.contains("setuid"), "{s}");
    assert!(
        hint.contains("allow_idmap = true") && hint.contains("option U"),
        "{hint}"
    );
    assert!(go(&c, "opt:/v:idmap").unwrap().options.idmap);
    // Host paths: never.
    let spec = format!("{}/export/app:/v:idmap", t.path().display());
    let (s, hint) = denied(&c, &spec);
    assert!(
        s.contains("option idmap") && s.contains("allowed_host_paths"),
        "{s}"
    );
    assert!(hint.contains("option U"), "{hint}");
    // The decision is there for check even when not asked.
    assert!(go(&c, "adm:/v").unwrap().rules.idmap.is_err());
    assert!(go(&c, "opt:/v").unwrap().rules.idmap.is_ok());
    assert!(go(&c, &spec.replace(":idmap", ""))
        .unwrap()
        .rules
        .idmap
        .is_err());
}

#[test]
fn u_and_relabel_on_read_only_volumes_need_the_admins_opt_in() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().display();
    let c = parse_config(
        t.path(),
        &format!(
            r#"
[volumes.refdata]
path = "{p}/ref"
read_only = true
[volumes.acc]
path = "{p}/acc"
access = "read-only"
[volumes.optin]
path = "{p}/optin"
read_only = true
allow_owner_change = true
allow_relabel = true
[volumes.nochange]
path = "{p}/nochange"
allow_owner_change = false
allow_relabel = false
[volumes.mine]
path = "{p}/mine"
[volumes.ex]
access = "exclusive"
exclusive_readers = true
[volumes.solo]
access = "exclusive"
"#
        ),
    );
    for spec in ["refdata:/r:U", "acc:/r:U", "nochange:/r:U", "ex:/r:ro,U"] {
        let (s, hint) = denied(&c, spec);
        assert!(s.contains("option U is not allowed on [volumes."), "{s}");
        assert!(hint.contains("allow_owner_change = true"), "{hint}");
    }
    let (s, _) = denied(&c, "refdata:/r:U");
    assert!(s.contains("read_only = true"), "{s}");
    let (s, _) = denied(&c, "acc:/r:U");
    assert!(s.contains("access = \"read-only\""), "{s}");
    let (s, _) = denied(&c, "ex:/r:ro,U");
    assert!(s.contains("exclusive_readers"), "{s}");
    for (spec, letter) in [
        ("refdata:/r:z", "option z"),
        ("acc:/r:Z", "option Z"),
        ("nochange:/r:z", "option z"),
        ("ex:/r:ro,Z", "option Z"),
    ] {
        let (s, hint) = denied(&c, spec);
        assert!(s.contains(letter) && s.contains("relabel"), "{s}");
        assert!(hint.contains("allow_relabel = true"), "{hint}");
    }
    // The admin's opt-in: U and z work, the mount stays read-only.
    let r = go(&c, "optin:/r:U,z").unwrap();
    assert!(r.options.chown && r.options.read_only);
    assert_eq!(r.options.relabel, Some(Relabel::Shared));
    // A user's own :ro on a writable volume changes nothing.
    for spec in [
        "mine:/m:ro,U",
        "mine:/m:ro,z",
        "mine:/m:ro,Z",
        "solo:/s:ro,U",
    ] {
        let r = go(&c, spec).unwrap();
        assert!(r.options.read_only, "{spec}");
    }
    // The writer of an exclusive_readers volume may.
    assert!(go(&c, "ex:/r:U,Z").is_ok());
    // Managed volumes without a table, and host paths, as before.
    assert!(go(&c, "any:/a:U,z").is_ok());
    // Not asked: no denial, but check can show the decision.
    let r = go(&c, "refdata:/r").unwrap();
    assert!(r.rules.owner_change.is_err() && r.rules.relabel.is_err());
    assert_eq!(
        r.rules.read_only.as_deref(),
        Some("[volumes.refdata] read_only = true")
    );
}

#[test]
fn suid_dev_and_exec_only_where_the_admin_allows_them() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().display();
    std::fs::create_dir_all(t.path().join("export/app")).unwrap();
    let mut c = parse_config(
        t.path(),
        &format!(
            r#"
allowed_host_paths = ["{p}/export"]
allowed_nfs_servers = ["nfs1"]
[volumes.sv]
[volumes.ok]
allow_options = ["suid", "dev"]
[volumes.nx]
noexec = true
[volumes.nxok]
noexec = true
allow_options = ["exec"]
"#
        ),
    );
    // A table without allow_options, no table, nfs://: none.
    for (spec, word, key) in [
        (
            "sv:/s:suid,dev",
            "option suid",
            "allow_options in [volumes.sv]",
        ),
        ("sv:/s:dev", "option dev", "allow_options in [volumes.sv]"),
        (
            "auto:/s:suid",
            "option suid",
            "[volumes.auto] with allow_options",
        ),
        (
            "nfs://nfs1/e:/s:dev",
            "option dev",
            "named volume with allow_options",
        ),
    ] {
        let (s, hint) = denied(&c, spec);
        assert!(s.contains(word), "{s}");
        assert!(hint.contains(key), "{spec}: {hint}");
    }
    let (s, _) = denied(&c, "sv:/s:suid");
    assert!(s.contains("nosuid") && s.contains("setuid"), "{s}");
    let (s, _) = denied(&c, "sv:/s:dev");
    assert!(s.contains("nodev") && s.contains("device"), "{s}");
    let r = go(&c, "ok:/s:suid,dev").unwrap();
    assert!(!r.options.nosuid && !r.options.nodev);
    // nosuid, nodev, noexec are always fine; exec is the default.
    assert!(go(&c, "sv:/s:nosuid,nodev,noexec").is_ok());
    assert!(go(&c, "sv:/s:exec").is_ok());
    // Host paths: host_path_options.
    let host = format!("{p}/export/app:/s:suid,dev");
    let (s, hint) = denied(&c, &host);
    assert!(
        s.contains("option suid") && s.contains("host_path_options"),
        "{s}"
    );
    assert!(hint.contains("host_path_options"), "{hint}");
    c.host_path_options = vec![MountOption::Suid, MountOption::Dev];
    let r = go(&c, &host).unwrap();
    assert!(!r.options.nosuid && !r.options.nodev);
    // noexec = true: forced, and exec is refused unless allowed.
    let r = go(&c, "nx:/x").unwrap();
    assert!(r.options.noexec);
    assert_eq!(
        r.rules.noexec.as_deref(),
        Some("[volumes.nx] noexec = true")
    );
    let (s, hint) = denied(&c, "nx:/x:exec");
    assert!(s.contains("option exec") && s.contains("noexec"), "{s}");
    assert!(
        hint.contains("\"exec\" to allow_options in [volumes.nx]"),
        "{hint}"
    );
    assert!(go(&c, "nxok:/x").unwrap().options.noexec);
    assert!(!go(&c, "nxok:/x:exec").unwrap().options.noexec);
}

#[test]
fn nfs_urls_limited_by_export_prefix() {
    let t = tempfile::tempdir().unwrap();
    let c = parse_config(
        t.path(),
        "allowed_nfs_servers = [\"nfs1:/export/containers\", \"nfs2\", \"nfs3:2050\"]",
    );
    let r = go(&c, "nfs://nfs1/export/containers/app:/d").unwrap();
    assert!(r.rule.contains("nfs1:/export/containers"), "{}", r.rule);
    assert!(go(&c, "nfs://NFS1:2049/export/containers:/d").is_ok());
    for spec in [
        "nfs://nfs1/export/containers2:/d",
        "nfs://nfs1/export:/d",
        "nfs://nfs1/:/d",
        "nfs://nfs1:20490/export/containers/app:/d",
    ] {
        let (s, hint) = denied(&c, spec);
        assert!(
            s.contains("NFS export") && s.contains("nfs1:/export/containers"),
            "{s}"
        );
        assert!(hint.contains("prefix"), "{hint}");
    }
    // The existing forms keep their meaning.
    assert!(go(&c, "nfs://nfs2:9999/anything:/d").is_ok());
    assert!(go(&c, "nfs://nfs3:2050/x:/d").is_ok());
    assert!(go(&c, "nfs://nfs3/x:/d").is_err());
    let (s, _) = denied(&c, "nfs://nfs4/x:/d");
    assert!(
        s.contains("NFS server nfs4 is not in allowed_nfs_servers"),
        "{s}"
    );
    // Entries are checked at load.
    for bad in ["nfs1:/a/../b", "/export", "nfs1:0", "a b"] {
        let e = Config::parse(
            &format!("allowed_nfs_servers = [\"{bad}\"]"),
            Path::new("/etc/x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("allowed_nfs_servers entry"), "{bad}: {e}");
    }
}

#[test]
fn host_paths_get_the_rules_of_the_admin_volumes_they_overlap() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().display();
    for d in ["x/ref/sub", "x/excl", "x/free", "x/nx", "link-target"] {
        std::fs::create_dir_all(t.path().join(d)).unwrap();
    }
    std::os::unix::fs::symlink(t.path().join("x/excl"), t.path().join("excl-link")).unwrap();
    let mut c = parse_config(
        t.path(),
        &format!(
            r#"
allowed_host_paths = ["{p}/x"]
host_path_options = ["suid", "exec"]
[volumes.refdata]
path = "{p}/x/ref"
read_only = true
[volumes.excl]
path = "{p}/excl-link"
access = "exclusive"
exclusive_readers = true
allow_options = ["suid"]
[volumes.nx]
path = "{p}/x/nx"
noexec = true
"#
        ),
    );
    // At, under, above a read-only admin volume: read-only, and said.
    for (sub, how) in [("x/ref", "at"), ("x/ref/sub", "under")] {
        let r = go(&c, &format!("{p}/{sub}:/r:rw")).unwrap();
        assert!(r.options.read_only, "{sub}");
        // As by name: read_only = true forces ro, access stays shared.
        assert_eq!(r.access, Access::Shared);
        assert!(
            r.rule
                .contains("overlaps [volumes.refdata]: read_only = true"),
            "{}",
            r.rule
        );
        assert_eq!(r.rules.overlaps, ["refdata"]);
        let (s, hint) = denied(&c, &format!("{p}/{sub}:/r:U"));
        assert!(s.contains("option U"), "{s}");
        assert!(
            s.contains(&format!("{how} the path of [volumes.refdata]")),
            "{s}"
        );
        assert!(
            hint.contains("allow_owner_change = true in [volumes.refdata]"),
            "{hint}"
        );
        let (s, _) = denied(&c, &format!("{p}/{sub}:/r:z"));
        assert!(s.contains("option z") && s.contains("relabel"), "{s}");
    }
    // Above: every admin volume under it, strictest of all.
    let r = go(&c, &format!("{p}/x:/r")).unwrap();
    assert!(r.options.read_only && r.options.noexec);
    assert_eq!(r.access, Access::Exclusive);
    assert!(r.exclusive_readers);
    let mut names = r.rules.overlaps.clone();
    names.sort();
    assert_eq!(names, ["excl", "nx", "refdata"]);
    // suid: host_path_options and excl allow it, refdata and nx do not.
    let (s, hint) = denied(&c, &format!("{p}/x:/r:suid"));
    assert!(
        s.contains("option suid") && s.contains("above the path of"),
        "{s}"
    );
    assert!(hint.contains("allow_options in [volumes."), "{hint}");
    // The exclusive volume, reached through its symlinked config path.
    let r = go(&c, &format!("{p}/x/excl:/e")).unwrap();
    assert_eq!((r.access, r.exclusive_readers), (Access::Exclusive, true));
    assert!(!r.options.read_only);
    assert!(
        r.rule
            .contains("overlaps [volumes.excl]: access = exclusive"),
        "{}",
        r.rule
    );
    assert!(go(&c, &format!("{p}/x/excl:/e:suid")).is_ok());
    let (s, _) = denied(&c, &format!("{p}/x/excl:/e:ro,U"));
    assert!(s.contains("exclusive_readers"), "{s}");
    // dev: neither host_path_options nor the volume.
    let (_, hint) = denied(&c, &format!("{p}/x/excl:/e:dev"));
    assert!(hint.contains("host_path_options"), "{hint}");
    // noexec: forced; exec needs both host_path_options and the volume.
    assert!(go(&c, &format!("{p}/x/nx:/n")).unwrap().options.noexec);
    let (_, hint) = denied(&c, &format!("{p}/x/nx:/n:exec"));
    assert!(hint.contains("allow_options in [volumes.nx]"), "{hint}");
    c.volumes.get_mut("nx").unwrap().allow_options = vec![MountOption::Exec];
    assert!(!go(&c, &format!("{p}/x/nx:/n:exec")).unwrap().options.noexec);
    c.host_path_options.clear();
    let (_, hint) = denied(&c, &format!("{p}/x/nx:/n:exec"));
    assert!(hint.contains("host_path_options"), "{hint}");
    // A sibling overlaps nothing.
    let r = go(&c, &format!("{p}/x/free:/f:U,z")).unwrap();
    assert!(!r.options.read_only && r.rules.overlaps.is_empty());
    assert_eq!(r.access, Access::Shared);
    // The same volume by name keeps its own rules only.
    assert!(go(&c, "excl:/e:suid").is_ok());
    assert!(!go(&c, "refdata:/r").unwrap().options.noexec);
}

#[test]
fn host_paths_never_reach_volumes_root_or_state_dir() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().display();
    for d in ["vols/a", "state/containers", "real-vols/b", "other"] {
        std::fs::create_dir_all(t.path().join(d)).unwrap();
    }
    let mut c = parse_config(t.path(), &format!("allowed_host_paths = [\"{p}\"]"));
    for (sub, key, how) in [
        ("vols", "volumes_root", "at"),
        ("vols/a", "volumes_root", "under"),
        ("state", "state_dir", "at"),
        ("state/containers", "state_dir", "under"),
    ] {
        let (s, hint) = denied(&c, &format!("{p}/{sub}:/v:U"));
        assert!(
            s.contains(key) && s.contains(&format!(" is {how} {key}")),
            "{s}"
        );
        assert!(hint.contains("named volume"), "{hint}");
    }
    // Above both.
    let (s, _) = denied(&c, &format!("{p}:/v"));
    assert!(s.contains("above volumes_root"), "{s}");
    assert!(go(&c, &format!("{p}/other:/v")).is_ok());
    // A volumes_root given through a symlink is compared resolved too.
    std::os::unix::fs::symlink(t.path().join("real-vols"), t.path().join("vlink")).unwrap();
    c.volumes_root = t.path().join("vlink");
    let (s, _) = denied(&c, &format!("{p}/real-vols/b:/v"));
    assert!(s.contains("under volumes_root"), "{s}");
    // A missing one is compared as written.
    c.volumes_root = t.path().join("other/not-yet");
    let (s, _) = denied(&c, &format!("{p}/other:/v"));
    assert!(s.contains("above volumes_root"), "{s}");
}
