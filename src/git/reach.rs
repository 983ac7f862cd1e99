//! Whether agentd's host-side fetch may reach a repository a tenant named.
//!
//! agentd fetches from the host, inside the operator's network. A tenant who
//! could name `http://10.0.0.5:8080/` or `git://127.0.0.1:6379/` would turn
//! the fetch into a probe of that network; a host name that resolves to such
//! an address is the same attack through DNS. These checks answer yes or no
//! and nothing more: why a source was refused (no such path, a private
//! address, no DNS answer) is for agentd's log, never for the tenant.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// The addresses a network source may be fetched from: every address its host
/// resolves to, all public. `None` when the host does not resolve, or any of
/// its addresses is internal (loopback, private, link-local, shared, unique
/// local, unspecified, multicast, or a v4 address mapped into v6 that is).
pub async fn public_addresses(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port)).await.ok()?.collect(),
    };
    let public = !addresses.is_empty() && addresses.iter().all(|a| !is_internal(a.ip()));
    public.then_some(addresses)
}

/// A tenant's fetch, held to the addresses vetted for it: git connects to
/// these and no others (a DNS answer that changes between the check and the
/// fetch is not followed), and follows no HTTP redirect (a public server must
/// not bounce agentd's fetch into the operator's network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// `http`, `https`, `git` or `ssh`.
    pub scheme: String,
    /// The URL's authority as written in the location (`host`, `host:port`,
    /// `user@host`).
    pub authority: String,
    /// The host as the URL names it.
    pub host: String,
    /// The port connected to.
    pub port: u16,
    /// The vetted addresses.
    pub addresses: Vec<SocketAddr>,
}

impl Pinned {
    /// git's `-c` options that hold the fetch to the vetted addresses: for
    /// http(s) curl's resolve list and no redirects; for git's own protocol
    /// the URL rewritten to the first address; for ssh the connection made to
    /// that address (host keys are still checked under the host's name).
    pub fn git_config(&self) -> Vec<String> {
        let shown = |ip: IpAddr| match ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let Some(first) = self.addresses.first() else {
            return Vec::new();
        };
        match self.scheme.as_str() {
            "http" | "https" => {
                let addresses: Vec<String> = self.addresses.iter().map(|a| shown(a.ip())).collect();
                vec![
                    format!(
                        "http.curloptResolve={host}:{}:{}",
                        self.port,
                        addresses.join(",")
                    ),
                    "http.followRedirects=false".to_string(),
                ]
            }
            "git" => vec![format!(
                "url.git://{}:{}/.insteadOf=git://{}/",
                shown(first.ip()),
                self.port,
                self.authority
            )],
            // git passes the URL's port itself.
            "ssh" => vec![format!("core.sshCommand=ssh -o HostName={}", first.ip())],
            _ => Vec::new(),
        }
    }
}

/// True for an address inside an operator's network or the host itself.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal_v4(v4),
            None => internal_v6(v6),
        },
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15; reserved, 240.0.0.0/4.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // IPv4-compatible (deprecated) and NAT64 forms of v4 addresses.
        || ip.to_ipv4().is_some_and(internal_v4)
        || (first == 0x64 && ip.segments()[1] == 0xff9b)
}

/// True when `path` exists and its real location (symbolic links followed)
/// is one of `prefixes` (their real locations) or below one.
pub fn real_path_under(path: &str, prefixes: &[String]) -> bool {
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    prefixes.iter().any(|prefix| {
        std::fs::canonicalize(prefix).is_ok_and(|prefix| Path::new(&real).starts_with(prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(scheme: &str, authority: &str, port: u16) -> Pinned {
        Pinned {
            scheme: scheme.into(),
            authority: authority.into(),
            host: "git.example.com".into(),
            port,
            addresses: vec![
                SocketAddr::new("203.0.113.7".parse().unwrap(), port),
                SocketAddr::new("2001:db8::7".parse().unwrap(), port),
            ],
        }
    }

    #[test]
    fn every_network_scheme_is_held_to_the_vetted_address() {
        assert_eq!(
            pinned("https", "git.example.com", 443).git_config(),
            [
                "http.curloptResolve=git.example.com:443:203.0.113.7,[2001:db8::7]",
                "http.followRedirects=false"
            ]
        );
        assert_eq!(
            pinned("git", "git.example.com", 9418).git_config(),
            ["url.git://203.0.113.7:9418/.insteadOf=git://git.example.com/"]
        );
        assert_eq!(
            pinned("ssh", "git@git.example.com", 22).git_config(),
            ["core.sshCommand=ssh -o HostName=203.0.113.7"]
        );
    }

    fn internal(text: &str) -> bool {
        is_internal(text.parse().unwrap())
    }

    #[test]
    fn the_operators_network_is_internal() {
        for address in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(internal(address), "{address} should be internal");
        }
    }

    #[test]
    fn the_internet_is_not() {
        for address in [
            "8.8.8.8",
            "140.82.112.3",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!internal(address), "{address} should be public");
        }
    }

    #[tokio::test]
    async fn loopback_by_name_or_number_is_refused() {
        assert!(public_addresses("127.0.0.1", 80).await.is_none());
        assert!(public_addresses("[::1]", 80).await.is_none());
        assert!(public_addresses("localhost", 80).await.is_none());
        assert!(public_addresses("", 80).await.is_none());
        assert!(public_addresses("no-such-host.invalid", 80).await.is_none());
        assert_eq!(
            public_addresses("8.8.8.8", 443).await.unwrap(),
            vec!["8.8.8.8:443".parse().unwrap()]
        );
    }

    #[test]
    fn real_paths_follow_links() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("allowed");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(allowed.join("repo")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, allowed.join("link")).unwrap();
        let prefixes = vec![allowed.display().to_string()];
        let under = |p: &Path| real_path_under(&p.display().to_string(), &prefixes);
        assert!(under(&allowed.join("repo")));
        assert!(!under(&allowed.join("link")));
        assert!(!under(&allowed.join("missing")));
        assert!(!under(&outside));
    }
}
