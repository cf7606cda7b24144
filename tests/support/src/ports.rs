//! Loopback ports: free ones, and waiting until something listens or serves on one.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port nothing listens on right now (it may be taken again before it is used).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most 20 s) until something accepts connections on `port`.
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits until `GET /healthz` answers 200: the server runs (and handles signals), not only
/// listens.
pub(crate) fn wait_until_serving(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answered = TcpStream::connect(("127.0.0.1", port))
            .ok()
            .and_then(|mut stream| {
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                stream
                    .write_all(
                        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                    )
                    .ok()?;
                let mut answer = String::new();
                stream.read_to_string(&mut answer).ok()?;
                Some(answer.starts_with("HTTP/1.1 200"))
            });
        if answered == Some(true) {
            return;
        }
        assert!(Instant::now() < deadline, "nothing serves on {port}");
        std::thread::sleep(Duration::from_millis(25));
    }
}
