//! The plain-HTTP policy.
//!
//! Loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`) and the hosts
//! listed with `--insecure-registry` use plain HTTP; every other registry
//! uses HTTPS.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::reference::split_host_port;

/// Returns `true` if `registry` (`host[:port]`) is a loopback address or
/// `localhost`.
///
/// Host names other than `localhost` count as remote even if they resolve
/// to a loopback address, because the decision is made without DNS.
pub fn is_loopback(registry: &str) -> bool {
    let Some((host, _port)) = split_host_port(registry) else {
        return false;
    };

    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok_and(|address| address.is_loopback());
    }

    host.parse::<Ipv4Addr>().is_ok_and(|address| address.is_loopback())
}

/// Returns `true` if kuul uses plain HTTP for `registry`: for loopback
/// registries and
/// for an entry of `insecure_registries` that equals `host:port`, or equals
/// the host alone and so covers every port.
pub fn uses_plain_http(registry: &str, insecure_registries: &[String]) -> bool {
    if is_loopback(registry) {
        return true;
    }

    let host = split_host_port(registry).map_or(registry, |(host, _port)| host);
    insecure_registries.iter().any(|entry| entry.eq_ignore_ascii_case(registry) || entry.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_recognized() {
        for registry in
            ["localhost", "localhost:5000", "LOCALHOST:5000", "127.0.0.1:5000", "127.3.4.5", "[::1]:5000", "[::1]"]
        {
            assert!(is_loopback(registry), "{registry}");
        }
    }

    #[test]
    fn remote_hosts_not_loopback() {
        for registry in ["10.0.0.1:5000", "registry.test", "localhost.test:5000", "[::2]:5000", "128.0.0.1", "[::1"] {
            assert!(!is_loopback(registry), "{registry}");
        }
    }

    #[test]
    fn plain_http_for_loopback_only_by_default() {
        assert!(uses_plain_http("127.0.0.1:5000", &[]));
        assert!(!uses_plain_http("registry.test:5000", &[]));
    }

    #[test]
    fn insecure_entry_with_port_matches_exactly() {
        let insecure = vec!["registry.test:5000".to_string()];

        assert!(uses_plain_http("registry.test:5000", &insecure));
        assert!(!uses_plain_http("registry.test:5001", &insecure));
        assert!(!uses_plain_http("registry.test", &insecure));
    }

    #[test]
    fn insecure_entry_without_port_covers_ports() {
        let insecure = vec!["registry.test".to_string()];

        assert!(uses_plain_http("registry.test:5000", &insecure));
        assert!(uses_plain_http("registry.test", &insecure));
        assert!(!uses_plain_http("other.test", &insecure));
    }
}
