//! Tiny TCP and UDP echo servers that answer with who they are and the peer address they
//! saw, and the matching clients. Servers and clients run inside a namespace (a thread that
//! entered it with `setns`), so tests see exactly what a real backend would see.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::TestbedError;
use crate::netns::{Netns, enter};

/// How often an idle UDP server looks at its stop flag.
const UDP_POLL: Duration = Duration::from_millis(50);

/// What an echo server answered: its id and the client address it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The id the server was started with, so a test knows which backend answered.
    pub server: String,
    /// The client address the server saw (after any NAT).
    pub peer: IpAddr,
}

impl Reply {
    fn parse(text: &str) -> Option<Reply> {
        let mut parts = text.split_whitespace();
        let server = parts.next()?.to_string();
        let peer = parts.next()?.parse().ok()?;
        Some(Reply { server, peer })
    }
}

/// A TCP and a UDP echo server on the same port (both families: one `[::]` socket each),
/// inside a namespace, stopped and joined on drop.
#[derive(Debug)]
pub struct EchoServer {
    id: String,
    port: u16,
    stop: Arc<AtomicBool>,
    netns: File,
    threads: Vec<JoinHandle<()>>,
}

impl EchoServer {
    /// Starts both servers on `port` in `ns`; each reply is `"<id> <peer address>\n"`.
    /// Returns once both sockets are bound.
    pub fn start(ns: &Netns, id: &str, port: u16) -> Result<EchoServer, TestbedError> {
        let any = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0));
        let (tcp, udp) = ns
            .run_in(move || -> std::io::Result<(TcpListener, UdpSocket)> {
                let udp = UdpSocket::bind(any)?;
                udp.set_read_timeout(Some(UDP_POLL))?;
                Ok((TcpListener::bind(any)?, udp))
            })?
            .map_err(|source| TestbedError::Bind { port, source })?;
        Ok(EchoServer::serve(id, port, tcp, udp, ns.open()?))
    }

    /// Starts both servers on `port` in the calling thread's own namespace: for a process
    /// that was started inside one (`ip netns exec NAME …`), such as the backends
    /// `dualstack demo --keep` leaves running.
    pub fn start_here(id: &str, port: u16) -> Result<EchoServer, TestbedError> {
        const OWN: &str = "/proc/thread-self/ns/net";
        let any = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0));
        let bind = || -> std::io::Result<(TcpListener, UdpSocket)> {
            let udp = UdpSocket::bind(any)?;
            udp.set_read_timeout(Some(UDP_POLL))?;
            Ok((TcpListener::bind(any)?, udp))
        };
        let (tcp, udp) = bind().map_err(|source| TestbedError::Bind { port, source })?;
        let netns = File::open(OWN).map_err(|source| TestbedError::OpenNetns {
            name: OWN.to_string(),
            source,
        })?;
        Ok(EchoServer::serve(id, port, tcp, udp, netns))
    }

    fn serve(id: &str, port: u16, tcp: TcpListener, udp: UdpSocket, netns: File) -> EchoServer {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let (s, name) = (stop.clone(), id.to_string());
        threads.push(std::thread::spawn(move || serve_tcp(tcp, &name, &s)));
        let (s, name) = (stop.clone(), id.to_string());
        threads.push(std::thread::spawn(move || serve_udp(udp, &name, &s)));
        EchoServer {
            id: id.to_string(),
            port,
            stop,
            netns,
            threads,
        }
    }

    /// The id this server answers with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The port both servers listen on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with one connection from inside the namespace.
        if let Ok(file) = self.netns.try_clone() {
            let port = self.port;
            let waker = std::thread::spawn(move || {
                if enter(&file).is_ok() {
                    let _ = TcpStream::connect_timeout(
                        &SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
                        Duration::from_secs(1),
                    );
                }
            });
            let _ = waker.join();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve_tcp(listener: TcpListener, id: &str, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = conn else { continue };
        if let Ok(peer) = stream.peer_addr() {
            let _ = stream.write_all(format!("{id} {}\n", peer.ip().to_canonical()).as_bytes());
        }
    }
}

fn serve_udp(socket: UdpSocket, id: &str, stop: &AtomicBool) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) {
        if let Ok((_, peer)) = socket.recv_from(&mut buf) {
            let reply = format!("{id} {}\n", peer.ip().to_canonical());
            let _ = socket.send_to(reply.as_bytes(), peer);
        }
    }
}

/// One TCP request from the calling thread's namespace: connect, read the reply.
pub fn tcp_request_here(to: SocketAddr, timeout: Duration) -> Result<Reply, TestbedError> {
    let client = |source| TestbedError::Client {
        protocol: "tcp",
        to,
        source,
    };
    let mut stream = TcpStream::connect_timeout(&to, timeout).map_err(client)?;
    stream.set_read_timeout(Some(timeout)).map_err(client)?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(client)?;
    Reply::parse(&text).ok_or(TestbedError::BadReply { to, text })
}

/// One UDP request from the calling thread's namespace: send a datagram, wait for the reply.
pub fn udp_request_here(to: SocketAddr, timeout: Duration) -> Result<Reply, TestbedError> {
    let client = |source| TestbedError::Client {
        protocol: "udp",
        to,
        source,
    };
    let local: SocketAddr = match to {
        SocketAddr::V4(_) => "0.0.0.0:0".parse(),
        SocketAddr::V6(_) => "[::]:0".parse(),
    }
    .map_err(|_| TestbedError::BadReply {
        to,
        text: String::new(),
    })?;
    let socket = UdpSocket::bind(local).map_err(client)?;
    socket.set_read_timeout(Some(timeout)).map_err(client)?;
    socket.connect(to).map_err(client)?;
    socket.send(b"ping\n").map_err(client)?;
    let mut buf = [0u8; 1500];
    let n = socket.recv(&mut buf).map_err(client)?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    Reply::parse(&text).ok_or(TestbedError::BadReply { to, text })
}

/// One TCP request from inside `ns`.
pub fn tcp_request(ns: &Netns, to: SocketAddr, timeout: Duration) -> Result<Reply, TestbedError> {
    ns.run_in(move || tcp_request_here(to, timeout))?
}

/// One UDP request from inside `ns`.
pub fn udp_request(ns: &Netns, to: SocketAddr, timeout: Duration) -> Result<Reply, TestbedError> {
    ns.run_in(move || udp_request_here(to, timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        assert_eq!(
            Reply::parse("b1 fd00::2\n"),
            Some(Reply {
                server: "b1".into(),
                peer: "fd00::2".parse().unwrap()
            })
        );
        assert_eq!(Reply::parse("b1"), None);
        assert_eq!(Reply::parse("b1 nonsense"), None);
    }
}
