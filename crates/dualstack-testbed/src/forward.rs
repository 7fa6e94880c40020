//! A loopback port of the host made reachable inside a namespace: a listener on
//! `127.0.0.1:PORT` in the namespace whose connections are relayed to `127.0.0.1:PORT` of the
//! test process's own namespace. Agents running inside a node namespace reach the test API
//! server this way, with the same kubeconfig as processes on the host, and no traffic goes
//! anywhere but loopback.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::TestbedError;
use crate::netns::Netns;

/// The relay; stops accepting when dropped (open connections end with their peers).
#[derive(Debug)]
pub struct LoopbackForward {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
}

impl LoopbackForward {
    /// Listens on `127.0.0.1:port` inside `ns` and relays to `127.0.0.1:port` here.
    pub fn start(ns: &Netns, port: u16) -> Result<LoopbackForward, TestbedError> {
        let at = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = ns
            .run_in(move || TcpListener::bind(at))?
            .map_err(|source| TestbedError::Bind { port, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| TestbedError::Bind { port, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let (stop_flag, paused_flag) = (Arc::clone(&stop), Arc::clone(&paused));
        std::thread::spawn(move || {
            while !stop_flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((inside, _)) => {
                        if paused_flag.load(Ordering::Relaxed) {
                            drop(inside);
                            continue;
                        }
                        std::thread::spawn(move || relay(inside, at));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(LoopbackForward { stop, paused })
    }
}

impl Drop for LoopbackForward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.paused.store(true, Ordering::Relaxed);
    }
}

fn relay(inside: TcpStream, to: SocketAddr) {
    let Ok(outside) = TcpStream::connect(to) else {
        return;
    };
    let _ = inside.set_nonblocking(false);
    let (Ok(inside2), Ok(outside2)) = (inside.try_clone(), outside.try_clone()) else {
        return;
    };
    std::thread::spawn(move || copy(inside2, outside2));
    copy(outside, inside);
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
