//! The one edit the wrapper makes: in a bundle's config.json that asks for
//! volumes, add our createRuntime and poststop hooks, and move a request
//! made through `process.env` into the annotation. The file is handled as
//! untyped JSON, so every field the wrapper does not know survives as is.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::HookError;

/// The annotation that carries the request (the hook's own key).
pub const ANNOTATION_KEY: &str = crate::input::annotations::ANNOTATION_KEY;
/// The variable docker 20.10 users set with `-e` (labels never reach config.json).
pub const ENV_VAR: &str = "OCI_VOLUME_HOOK_VOLUMES";
/// The environment the hook runs with (as in our hooks.d entries).
pub const HOOK_ENV: [&str; 2] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"];
/// Seconds, as in our hooks.d entries.
pub const PRESTART_TIMEOUT: u64 = 120;
pub const POSTSTOP_TIMEOUT: u64 = 30;
/// Bigger config.json files are refused (runc's own are a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The hook the wrapper adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// Absolute path of `oci-volume-hook`.
    pub path: String,
    /// `--config FILE` to pass on, if the wrapper was given one.
    pub config: Option<String>,
}

impl HookSpec {
    fn entry(&self, stage: &str, timeout: u64) -> Value {
        let mut args = vec!["oci-volume-hook".to_string()];
        if let Some(c) = &self.config {
            args.push("--config".into());
            args.push(c.clone());
        }
        args.push(stage.into());
        json!({ "path": self.path, "args": args, "env": HOOK_ENV, "timeout": timeout })
    }
}

/// Edit `config` in place. Returns whether anything changed: false for a
/// container that asks for nothing (and for one that already has our hooks
/// and no variable to move).
pub fn add_hooks(config: &mut Value, hook: &HookSpec) -> Result<bool, String> {
    let root = config
        .as_object_mut()
        .ok_or("the top level is not a JSON object")?;

    // The variable: always removed from the container's environment.
    let from_env = take_env_request(root)?;

    let annotations = match root.get("annotations") {
        None | Some(Value::Null) => None,
        Some(Value::Object(a)) => Some(a),
        Some(_) => return Err("annotations is not a JSON object".into()),
    };
    let annotated = match annotations.and_then(|a| a.get(ANNOTATION_KEY)) {
        None => false,
        Some(Value::String(_)) => true,
        Some(_) => return Err(format!("annotation {ANNOTATION_KEY} is not a string")),
    };
    if !annotated && from_env.is_none() {
        return Ok(false);
    }
    let mut changed = from_env.is_some();
    if !annotated {
        // The annotation wins when both are there.
        let value = Value::String(from_env.unwrap_or_default());
        match root.get_mut("annotations").and_then(Value::as_object_mut) {
            Some(a) => {
                a.insert(ANNOTATION_KEY.into(), value);
            }
            None => {
                root.insert(
                    "annotations".into(),
                    Value::Object(Map::from_iter([(ANNOTATION_KEY.to_string(), value)])),
                );
            }
        }
    }

    if matches!(root.get("hooks"), None | Some(Value::Null)) {
        root.insert("hooks".into(), Value::Object(Map::new()));
    }
    let hooks = root
        .get_mut("hooks")
        .and_then(Value::as_object_mut)
        .ok_or("hooks is not a JSON object")?;
    // prestart is the old name of the same moment: ours there counts too.
    if !has_hook(hooks, &["createRuntime", "prestart"], &hook.path)? {
        stage_list(hooks, "createRuntime")?.push(hook.entry("prestart", PRESTART_TIMEOUT));
        changed = true;
    }
    if !has_hook(hooks, &["poststop"], &hook.path)? {
        stage_list(hooks, "poststop")?.push(hook.entry("poststop", POSTSTOP_TIMEOUT));
        changed = true;
    }
    Ok(changed)
}

/// Remove every `OCI_VOLUME_HOOK_VOLUMES` entry from `process.env` and
/// return the value of the last one (a later `-e` overrides an earlier one).
fn take_env_request(root: &mut Map<String, Value>) -> Result<Option<String>, String> {
    let Some(env) = root.get_mut("process").and_then(|p| p.get_mut("env")) else {
        return Ok(None);
    };
    let env = match env {
        Value::Array(a) => a,
        Value::Null => return Ok(None),
        _ => return Err("process.env is not a JSON array".into()),
    };
    let mut found = None;
    let mut err = None;
    env.retain(|e| {
        let Some(s) = e.as_str() else {
            err = Some("process.env holds a value that is not a string");
            return true;
        };
        let (name, value) = s.split_once('=').unwrap_or((s, ""));
        if name == ENV_VAR {
            found = Some(value.to_string());
            false
        } else {
            true
        }
    });
    match err {
        Some(e) => Err(e.into()),
        None => Ok(found),
    }
}

fn has_hook(hooks: &Map<String, Value>, stages: &[&str], path: &str) -> Result<bool, String> {
    for stage in stages {
        match hooks.get(*stage) {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                if list
                    .iter()
                    .any(|h| h.get("path").and_then(Value::as_str) == Some(path))
                {
                    return Ok(true);
                }
            }
            Some(_) => return Err(format!("hooks.{stage} is not a JSON array")),
        }
    }
    Ok(false)
}

fn stage_list<'a>(
    hooks: &'a mut Map<String, Value>,
    stage: &str,
) -> Result<&'a mut Vec<Value>, String> {
    let slot = hooks
        .entry(stage)
        .or_insert_with(|| Value::Array(Vec::new()));
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
        .ok_or_else(|| format!("hooks.{stage} is not a JSON array"))
}

/// Read and parse a bundle's config.json.
pub fn read(path: &Path) -> Result<Value, HookError> {
    let subject = format!("bundle config {}", path.display());
    let file = File::open(path).map_err(|e| {
        HookError::failed(&subject, format!("open: {e}"))
            .hint("the runtime was given a bundle without a readable config.json")
    })?;
    let meta = file
        .metadata()
        .map_err(|e| HookError::failed(&subject, format!("stat: {e}")))?;
    if !meta.is_file() {
        return Err(HookError::failed(subject, "not a regular file"));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(HookError::failed(
            subject,
            format!("larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| HookError::failed(subject, format!("not valid JSON: {e}")))
}

/// Replace `path` atomically: a temporary file in the same directory with
/// the same mode (and owner, when we may set it), fsync, rename. On failure
/// the original is left as it was.
pub fn write_atomic(path: &Path, config: &Value) -> Result<(), HookError> {
    let subject = format!("bundle config {}", path.display());
    let fail = |what: &str, e: std::io::Error| HookError::failed(&subject, format!("{what}: {e}"));
    let meta = fs::metadata(path).map_err(|e| fail("stat", e))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.oci-volume-runtime.{}", std::process::id()));
    let mut bytes = serde_json::to_vec(config)
        .map_err(|e| HookError::failed(&subject, format!("serialize: {e}")))?;
    bytes.push(b'\n');

    let result = (|| {
        let _ = fs::remove_file(&tmp); // a leftover of a killed run with our pid
        let mode = meta.mode() & 0o7777;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| fail(&format!("create {}", tmp.display()), e))?;
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()))
                .map_err(|e| fail("fchown", e))?;
        }
        // After fchown (which may clear set-id bits) and despite the umask.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| fail("chmod", e))?;
        f.write_all(&bytes).map_err(|e| fail("write", e))?;
        f.sync_all().map_err(|e| fail("fsync", e))?;
        fs::rename(&tmp, path).map_err(|e| fail(&format!("rename {}", tmp.display()), e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    // No fsync of the directory: a bundle does not outlive a crash of the
    // host (containerd and docker keep it on tmpfs under /run); the file's
    // fsync before the rename is what keeps a reader from a torn file.
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> HookSpec {
        HookSpec {
            path: "/usr/bin/oci-volume-hook".into(),
            config: Some("/etc/ovh.toml".into()),
        }
    }

    fn runc_spec() -> Value {
        json!({
            "ociVersion": "1.0.2-dev",
            "process": {"terminal": false, "args": ["sh"], "env": ["PATH=/bin", "TERM=xterm"]},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "mount"}], "x-unknown": {"kept": [1, 2.5, null]}},
            "somethingNew": true
        })
    }

    #[test]
    fn nothing_asked_nothing_changed() {
        let mut c = runc_spec();
        let before = c.clone();
        assert_eq!(add_hooks(&mut c, &hook()), Ok(false));
        assert_eq!(c, before);
        let mut c = json!({"annotations": {"other": "x"}, "process": {"env": null}});
        let before = c.clone();
        assert_eq!(add_hooks(&mut c, &hook()), Ok(false));
        assert_eq!(c, before);
        // Not the variable, only a name that starts like it.
        let mut c = json!({"process": {"env": ["OCI_VOLUME_HOOK_VOLUMES_X=a:/a"]}});
        assert_eq!(add_hooks(&mut c, &hook()), Ok(false));
    }

    #[test]
    fn annotation_adds_both_hooks_and_keeps_unknown_fields() {
        let mut c = runc_spec();
        c["annotations"] = json!({ANNOTATION_KEY: "myapp:/myapp", "k": "v"});
        assert_eq!(add_hooks(&mut c, &hook()), Ok(true));
        assert_eq!(
            c["hooks"]["createRuntime"],
            json!([{"path": "/usr/bin/oci-volume-hook",
                    "args": ["oci-volume-hook", "--config", "/etc/ovh.toml", "prestart"],
                    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"], "timeout": 120}])
        );
        assert_eq!(
            c["hooks"]["poststop"][0]["args"],
            json!(["oci-volume-hook", "--config", "/etc/ovh.toml", "poststop"])
        );
        assert_eq!(c["hooks"]["poststop"][0]["timeout"], json!(30));
        assert_eq!(c["linux"]["x-unknown"], json!({"kept": [1, 2.5, null]}));
        assert_eq!(c["somethingNew"], json!(true));
        assert_eq!(c["annotations"]["k"], json!("v"));
        assert_eq!(c["process"]["env"], json!(["PATH=/bin", "TERM=xterm"]));
    }

    #[test]
    fn never_twice() {
        let mut c = json!({"annotations": {ANNOTATION_KEY: "a:/a"}});
        assert_eq!(add_hooks(&mut c, &hook()), Ok(true));
        let once = c.clone();
        assert_eq!(add_hooks(&mut c, &hook()), Ok(false));
        assert_eq!(c, once);
        // Ours under the old stage name counts; other hooks are kept.
        let mut c = json!({"annotations": {ANNOTATION_KEY: "a:/a"},
            "hooks": {"prestart": [{"path": "/usr/bin/oci-volume-hook"}],
                      "poststop": [{"path": "/other"}]}});
        assert_eq!(add_hooks(&mut c, &hook()), Ok(true));
        assert!(c["hooks"].get("createRuntime").is_none());
        assert_eq!(c["hooks"]["poststop"].as_array().unwrap().len(), 2);
        assert_eq!(c["hooks"]["poststop"][0]["path"], json!("/other"));
    }

    #[test]
    fn no_config_option_no_config_argument() {
        let mut c = json!({"annotations": {ANNOTATION_KEY: "a:/a"}});
        let h = HookSpec {
            path: "/x/oci-volume-hook".into(),
            config: None,
        };
        add_hooks(&mut c, &h).unwrap();
        assert_eq!(
            c["hooks"]["createRuntime"][0]["args"],
            json!(["oci-volume-hook", "prestart"])
        );
    }

    #[test]
    fn variable_moves_into_the_annotation() {
        let mut c = runc_spec();
        c["process"]["env"] = json!([
            "PATH=/bin",
            "OCI_VOLUME_HOOK_VOLUMES=old:/o",
            "A=1",
            "OCI_VOLUME_HOOK_VOLUMES=myapp:/myapp;logs:/l:ro"
        ]);
        assert_eq!(add_hooks(&mut c, &hook()), Ok(true));
        assert_eq!(c["process"]["env"], json!(["PATH=/bin", "A=1"]));
        assert_eq!(
            c["annotations"][ANNOTATION_KEY],
            json!("myapp:/myapp;logs:/l:ro")
        );
        assert_eq!(c["hooks"]["createRuntime"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn annotation_wins_and_the_variable_still_goes() {
        let mut c = json!({"annotations": {ANNOTATION_KEY: "ann:/a"},
            "process": {"env": ["OCI_VOLUME_HOOK_VOLUMES=env:/e"]},
            "hooks": {"createRuntime": [{"path": "/usr/bin/oci-volume-hook"}],
                      "poststop": [{"path": "/usr/bin/oci-volume-hook"}]}});
        // Hooks already there, but the variable must leave the env: changed.
        assert_eq!(add_hooks(&mut c, &hook()), Ok(true));
        assert_eq!(c["annotations"][ANNOTATION_KEY], json!("ann:/a"));
        assert_eq!(c["process"]["env"], json!([]));
        assert_eq!(c["hooks"]["createRuntime"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn empty_variable_is_a_request_the_hook_judges() {
        let mut c = json!({"process": {"env": ["OCI_VOLUME_HOOK_VOLUMES="]}});
        assert_eq!(add_hooks(&mut c, &hook()), Ok(true));
        assert_eq!(c["annotations"][ANNOTATION_KEY], json!(""));
    }

    #[test]
    fn malformed_shapes_are_errors() {
        let bad = [
            json!([1]),
            json!({"annotations": [1], "process": {}}),
            json!({"annotations": {ANNOTATION_KEY: 3}}),
            json!({"process": {"env": "A=1"}}),
            json!({"process": {"env": [1]}}),
            json!({"annotations": {ANNOTATION_KEY: "a:/a"}, "hooks": []}),
            json!({"annotations": {ANNOTATION_KEY: "a:/a"}, "hooks": {"poststop": {}}}),
        ];
        for mut c in bad {
            let shown = c.to_string();
            assert!(add_hooks(&mut c, &hook()).is_err(), "{shown}");
        }
    }

    #[test]
    fn atomic_write_keeps_mode_and_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        fs::write(&p, b"{\"a\": 1}").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let mut c = read(&p).unwrap();
        c["b"] = json!(2);
        write_atomic(&p, &c).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(read(&p).unwrap(), json!({"a": 1, "b": 2}));
        // No temporary file left behind.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn read_errors_name_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        let e = read(&p).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("bundle config {} failed: open: ", p.display())),
            "{e}"
        );
        fs::write(&p, b"{not json").unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        assert_eq!(e.exit_code(), 1);
    }
}
