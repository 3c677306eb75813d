//! The fsconfig parameters of an NFS mount, and the same as a mount(8)
//! option string for messages and `check`. Pure.

use std::net::IpAddr;

use crate::config::nfs::Version;
use crate::plan::NfsStep;

/// Every fsconfig parameter for a mount, in order; `source` first.
pub fn mount_params(
    step: &NfsStep,
    context: Option<&str>,
    addr: IpAddr,
    client: Option<IpAddr>,
    nosharecache: bool,
) -> Vec<(String, Option<String>)> {
    let v = &step.volume;
    let host = if v.host.contains(':') {
        format!("[{}]", v.host)
    } else {
        v.host.clone()
    };
    let mut p: Vec<(String, Option<String>)> = vec![
        (
            "source".into(),
            Some(format!("{host}:{}", v.export.display())),
        ),
        ("vers".into(), Some(v.options.version.as_str().into())),
        ("addr".into(), Some(addr.to_string())),
    ];
    if let (Version::V4_0, Some(c)) = (v.options.version, client) {
        p.push(("clientaddr".into(), Some(c.to_string())));
    }
    if let Some(port) = v.port {
        if !v.options.params.iter().any(|(k, _)| k == "port") {
            p.push(("port".into(), Some(port.to_string())));
        }
    }
    p.extend(v.options.params.iter().cloned());
    if nosharecache {
        p.push(("nosharecache".into(), None));
    }
    if let Some(c) = context {
        p.push(("context".into(), Some(c.to_string())));
    }
    p
}

/// The parameters as a mount(8) option string (without `source`). A value
/// with a comma (an SELinux level with categories) is double-quoted, as the
/// mount(2) data string needs; fsconfig takes the raw value.
pub fn render(params: &[(String, Option<String>)]) -> String {
    params
        .iter()
        .filter(|(k, _)| k != "source")
        .map(|(k, v)| match v {
            None => k.clone(),
            Some(v) if v.contains(',') => format!("{k}=\"{v}\""),
            Some(v) => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::nfs::fixture::step;

    #[test]
    fn params_and_rendering() {
        let s = step("vers=4.0,hard,timeo=600");
        let p = mount_params(
            &s,
            Some("system_u:object_r:container_file_t:s0:c1,c2"),
            "10.0.0.5".parse().unwrap(),
            Some("10.0.0.9".parse().unwrap()),
            false,
        );
        assert_eq!(
            p[0],
            ("source".into(), Some("fs.example.com:/exports/logs".into()))
        );
        assert_eq!(
            render(&p),
            "vers=4.0,addr=10.0.0.5,clientaddr=10.0.0.9,hard,timeo=600,context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        // fsconfig gets the raw value (quotes are for the mount(2) data string).
        assert_eq!(
            p.last().unwrap().1.as_deref(),
            Some("system_u:object_r:container_file_t:s0:c1,c2")
        );
        // clientaddr only for 4.0; nosharecache on request; URL port.
        let mut s = step("vers=4.2");
        s.volume.port = Some(20049);
        let p = mount_params(
            &s,
            None,
            "10.0.0.5".parse().unwrap(),
            Some("10.0.0.9".parse().unwrap()),
            true,
        );
        assert_eq!(render(&p), "vers=4.2,addr=10.0.0.5,port=20049,nosharecache");
        // IPv6 server: brackets in the source only.
        let mut s = step("vers=3,nolock");
        s.volume.host = "fd00::5".into();
        let p = mount_params(&s, None, "fd00::5".parse().unwrap(), None, false);
        assert_eq!(p[0].1.as_deref(), Some("[fd00::5]:/exports/logs"));
        assert_eq!(render(&p), "vers=3,addr=fd00::5,nolock");
        assert_eq!(s.volume.display(), "[fd00::5]:/exports/logs/app1");
    }
}
