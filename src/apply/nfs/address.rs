//! The server's address: the kernel does no DNS, so the hook resolves the
//! server name itself and passes `addr=`; for NFS 4.0 also `clientaddr=`,
//! the local address this host uses to reach the server.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};

use crate::apply::ApplyError;
use crate::config::nfs::{Family, NFS_PORT};
use crate::error::quote;
use crate::policy::NfsVolume;

/// Resolve the server name to one address (the kernel needs `addr=`).
pub fn resolve(volume: &NfsVolume) -> Result<SocketAddr, ApplyError> {
    let port = volume.port.unwrap_or(NFS_PORT);
    let addrs = (volume.host.as_str(), port).to_socket_addrs().map_err(|e| {
        ApplyError::unusable(format!(
            "NFS server name {} does not resolve: {e}",
            quote(&volume.host)
        ))
        .hint("check the server name in the volume's nfs = (or the nfs:// source), DNS and /etc/hosts; the hook resolves it itself because the kernel does not")
    })?;
    let family_ok = |a: &SocketAddr| match volume.options.family {
        Some(Family::V4) => a.is_ipv4(),
        Some(Family::V6) => a.is_ipv6(),
        None => true,
    };
    let all: Vec<SocketAddr> = addrs.collect();
    all.iter().copied().find(family_ok).ok_or_else(|| {
        ApplyError::unusable(format!(
            "NFS server name {} resolves to no {} address ({})",
            quote(&volume.host),
            if volume.options.family == Some(Family::V6) {
                "IPv6"
            } else {
                "IPv4"
            },
            all.iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .hint("proto=tcp means IPv4, proto=tcp6 IPv6")
    })
}

/// The local address this host's routing picks to reach `server` (a
/// connected UDP socket sends nothing).
pub fn client_addr(server: SocketAddr) -> std::io::Result<IpAddr> {
    let any: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let s = UdpSocket::bind(any)?;
    s.connect(server)?;
    Ok(s.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::nfs::fixture::vol;
    use crate::config::nfs::NfsOptions;

    #[test]
    fn resolution_and_client_address() {
        let mut v = vol("vers=4.1");
        v.host = "127.0.0.1".into();
        let a = resolve(&v).unwrap();
        assert_eq!(a, "127.0.0.1:2049".parse().unwrap());
        assert_eq!(
            client_addr(a).unwrap(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        v.host = "localhost".into();
        assert!(resolve(&v).is_ok());
        v.host = "no-such-host.invalid".into();
        let e = resolve(&v).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("NFS server name \"no-such-host.invalid\" does not resolve"),
            "{e}"
        );
        v.host = "127.0.0.1".into();
        v.options = NfsOptions::parse("proto=tcp6").unwrap();
        assert!(resolve(&v)
            .unwrap_err()
            .to_string()
            .contains("no IPv6 address"));
    }
}
