//! A flood of datagrams that a server must drop, for the cost of a dropped datagram.
//!
//! The flood comes in bursts: the server process is stopped (`SIGSTOP`), a burst is
//! queued on its socket with `sendmmsg(2)`, the server is continued (`SIGCONT`) and the
//! next burst waits until its receive queue is empty. So every server reads its datagrams
//! in full batches, one wake-up per burst, whatever its speed relative to the sender's:
//! what is measured is the work per datagram, not how often a race between sender and
//! receiver put the receiver to sleep. Datagrams the kernel dropped because the queue was
//! full never reached the server; they are counted from `/proc/net/udp` and left out.

#![allow(unsafe_code)]

use crate::mmsg::{Addr, SendBatch};
use crate::procfs;
use std::io;
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Datagrams per burst: well within a default receive buffer (212 992 bytes) for small
/// datagrams, and four `recvmmsg` batches of 32.
pub const BURST: usize = 128;

/// Longest wait for the server to stop or to empty its receive queue.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `count` copies of `datagram` to the server process `pid` listening on `server`,
/// in bursts, and returns how many it read (sent minus those the kernel dropped).
pub fn flood(pid: u32, server: SocketAddrV4, datagram: &[u8], count: u64) -> io::Result<u64> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let before = procfs::udp_queue(server.port())?;
    let to = Addr::from(server);
    let mut batch = SendBatch::new(BURST);
    let mut sent = 0;
    while sent < count {
        let n = (count - sent).min(BURST as u64);
        signal(pid, libc::SIGSTOP)?;
        wait_for(|| Ok(procfs::state(pid)? == 'T'))?;
        batch.send_all(&socket, (0..n).map(|_| (to, datagram)));
        sent += n;
        signal(pid, libc::SIGCONT)?;
        wait_for(|| Ok(procfs::udp_queue(server.port())?.rx_queue == 0))?;
    }
    let after = procfs::udp_queue(server.port())?;
    Ok(count.saturating_sub(after.drops - before.drops))
}

fn signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill only sends a signal to the process we spawned; no memory is involved.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn wait_for(mut done: impl FnMut() -> io::Result<bool>) -> io::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while !done()? {
        if Instant::now() > deadline {
            return Err(io::Error::other(
                "the server under junk load stopped answering",
            ));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}
