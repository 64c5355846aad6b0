//! Free TCP ports on 127.0.0.1 for hostfwd, so parallel VMs never collide.

use std::net::TcpListener;

/// Asks the kernel for `n` distinct free ports (held open together, then released).
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports = super::free_ports(3).unwrap();
        assert_eq!(ports.len(), 3);
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
        for p in ports {
            std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }
}
