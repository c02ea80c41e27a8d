//! `--server HOST[:PORT]`: one address syntax for every mode. HOST is a name, an IPv4
//! address or an IPv6 address (bare, `::1`, or in brackets, `[::1]`, which a port
//! needs: `[::1]:8000`). The port, if any, is the port of the mode's first contact:
//! TCP in rooms mode, UDP in relay mode.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// A parsed `--server` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAddr {
    /// Host name or IP, without brackets.
    pub host: String,
    /// The port, if one was given.
    pub port: Option<u16>,
}

/// Reads `HOST`, `HOST:PORT`, `IPV6`, `[IPV6]` or `[IPV6]:PORT`.
pub fn parse(text: &str) -> Result<ServerAddr, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("--server is empty".into());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: '[' without ']'"))?;
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{host:?} in brackets is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            after => {
                Some(port(after.strip_prefix(':').ok_or_else(|| {
                    format!("{text:?}: expected ':PORT' after ']'")
                })?)?)
            }
        };
        return Ok(ServerAddr {
            host: host.to_owned(),
            port,
        });
    }
    if text.parse::<IpAddr>().is_ok() {
        return Ok(ServerAddr {
            host: text.to_owned(),
            port: None,
        });
    }
    match text.split_once(':') {
        Some((host, p)) if !p.contains(':') && !host.is_empty() => Ok(ServerAddr {
            host: host.to_owned(),
            port: Some(port(p)?),
        }),
        Some(_) => Err(format!(
            "{text:?} is not HOST or HOST:PORT (an IPv6 address with a port goes in brackets: [::1]:8000)"
        )),
        None => Ok(ServerAddr {
            host: text.to_owned(),
            port: None,
        }),
    }
}

fn port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{text:?} is not a port (1-65535)")),
        Ok(port) => Ok(port),
    }
}

/// The first address `host` resolves to, with `port`.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host:?} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (String, Option<u16>) {
        let addr = parse(text).unwrap();
        (addr.host, addr.port)
    }

    #[test]
    fn hosts_with_and_without_ports() {
        assert_eq!(ok("127.0.0.1"), ("127.0.0.1".into(), None));
        assert_eq!(ok("127.0.0.1:9000"), ("127.0.0.1".into(), Some(9000)));
        assert_eq!(ok("chat.example"), ("chat.example".into(), None));
        assert_eq!(ok("localhost:8001"), ("localhost".into(), Some(8001)));
    }

    #[test]
    fn ipv6_bare_or_in_brackets() {
        assert_eq!(ok("::1"), ("::1".into(), None));
        assert_eq!(ok("[::1]"), ("::1".into(), None));
        assert_eq!(ok("[::1]:8000"), ("::1".into(), Some(8000)));
    }

    #[test]
    fn malformed_addresses_are_explained() {
        for bad in [
            "",
            "host:",
            "host:0",
            "host:70000",
            "[::1",
            "[::1]8000",
            "[nope]:1",
            "a:b:c",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse("a:b:c").unwrap_err().contains("brackets"));
    }
}
