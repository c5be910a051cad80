//! Who holds a TCP port: listening sockets from `/proc/net/tcp{,6}` matched to
//! processes through the `socket:[inode]` links in `/proc/*/fd`, never by
//! shelling out to `lsof`.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::net::TcpListener;

/// A process holding a listening socket on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHolder {
    pub pid: u32,
    pub cmdline: String,
}

impl fmt::Display for PortHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.cmdline)
    }
}

/// TCP state LISTEN in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// Inodes of the sockets listening on `port` (IPv4 and IPv6).
fn listening_inodes(port: u16) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != LISTEN {
                continue;
            }
            let local_port = cols[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                if let Ok(inode) = cols[9].parse::<u64>() {
                    if inode != 0 {
                        inodes.insert(inode);
                    }
                }
            }
        }
    }
    inodes
}

/// The fast check before a start: can the port be bound right now? Binding
/// the dual-stack wildcard (with SO_REUSEADDR, as std does) fails if anything
/// listens on the port on any address; it costs microseconds, where reading
/// `/proc/net/tcp` costs far more on a busy machine. `false` only means "look
/// closer" with [`holders`].
pub fn bindable(port: u16) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    match TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => false,
        // No IPv6 here: the IPv4 wildcard alone.
        Err(_) => TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).is_ok(),
    }
}

/// Whether something listens on `port`.
pub fn is_listening(port: u16) -> bool {
    !listening_inodes(port).is_empty()
}

/// Every process holding a socket that listens on `port`, lowest pid first.
pub fn holders(port: u16) -> Vec<PortHolder> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return vec![];
    }
    let wanted: HashSet<std::path::PathBuf> = inodes
        .iter()
        .map(|i| std::path::PathBuf::from(format!("socket:[{i}]")))
        .collect();
    let mut pids: Vec<u32> = super::procfs::fd_holders(&wanted, true)
        .into_values()
        .flatten()
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .map(|pid| PortHolder {
            pid,
            cmdline: super::procfs::cmdline(pid).unwrap_or_else(|| "?".into()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ourselves_holding_a_port() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(is_listening(port));
        assert!(!bindable(port));
        let h = holders(port);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].pid, std::process::id());
        drop(l);
        assert!(holders(port).is_empty());
    }
}
