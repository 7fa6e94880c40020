//! A TCP sink for the bulk-throughput test: inside a namespace, reads each connection to
//! the end and answers with the byte count (8 bytes, big endian). Stopped on drop.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use dualstack_testbed::Netns;

use crate::BenchError;

/// How often the idle sink looks at its stop flag.
const POLL: Duration = Duration::from_millis(5);

/// The running sink.
#[derive(Debug)]
pub struct Sink {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    /// Listens on `[::]:port` (both families) in `ns`.
    pub fn start(ns: &Netns, port: u16) -> Result<Sink, BenchError> {
        let any = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0));
        let listener = ns
            .run_in(move || -> std::io::Result<TcpListener> {
                let l = TcpListener::bind(any)?;
                l.set_nonblocking(true)?;
                Ok(l)
            })?
            .map_err(|source| BenchError::Io {
                what: format!("bind the bulk sink on port {port}"),
                source,
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || serve(&listener, &flag));
        Ok(Sink {
            stop,
            thread: Some(thread),
        })
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                // A failed transfer shows up on the client side as a short count.
                let _ = drain(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn drain(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total: u64 = 0;
    loop {
        match stream.read(&mut buf)? {
            0 => break,
            n => total += n as u64,
        }
    }
    stream.write_all(&total.to_be_bytes())
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
