//! A flood of datagrams that a server must drop, for the cost of a dropped datagram.
//!
//! The flood comes in bursts: the server process is stopped (`SIGSTOP`), a burst is
//! queued on its socket with `sendmmsg(2)`, the server is continued (`SIGCONT`) and the
//! next burst waits until its receive queue is empty. So every server reads its datagrams
//! in full batches, one wake-up per burst, whatever its speed relative to the sender's:
//! what is measured is the work per datagram, not how often a race between sender and
//! receiver put the receiver to sleep.
//!
//! Stopping and continuing a process costs it a context switch per thread, more for a
//! server with helper threads than for a one-thread loop; so that this cost is spread
//! over thousands of datagrams, the server's socket gets a receive buffer as large as
//! the system allows for the run ([`enlarge_receive_buffer`]: the socket is borrowed
//! from the server with `pidfd_getfd(2)`; nothing else about it changes). Datagrams the
//! kernel dropped because the queue was full never reached the server; they are counted
//! from `/proc/net/udp` and left out.

#![allow(unsafe_code)]

use crate::mmsg::{Addr, SendBatch};
use crate::procfs;
use std::io;
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Datagrams per burst: within a receive buffer of 4 MiB (the usual `rmem_max`; the
/// kernel doubles it) for datagrams of a few hundred bytes; 128 `recvmmsg` batches of 32.
pub const BURST: usize = 4096;

/// Datagrams per `sendmmsg`.
const SEND_BATCH: usize = 256;

/// The receive buffer asked for (the kernel caps it at `net.core.rmem_max`).
const RECEIVE_BUFFER: libc::c_int = 4 << 20;

/// Longest wait for the server to stop or to empty its receive queue.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `count` copies of `datagram` to the server process `pid` listening on `server`,
/// in bursts, and returns how many it read (sent minus those the kernel dropped).
pub fn flood(pid: u32, server: SocketAddrV4, datagram: &[u8], count: u64) -> io::Result<u64> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let before = procfs::udp_queue(server.port())?;
    let to = Addr::from(server);
    enlarge_receive_buffer(pid, server.port())?;
    let mut batch = SendBatch::new(SEND_BATCH);
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

/// Gives the UDP socket of process `pid` bound to `port` the largest receive buffer the
/// system allows, through a duplicate of its descriptor (`pidfd_getfd`).
pub fn enlarge_receive_buffer(pid: u32, port: u16) -> io::Result<()> {
    let target = procfs::socket_fd(pid, procfs::udp_inode(port)?)?;
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pidfd_getfd takes the pidfd just opened, a descriptor number of that
    // process and flags, and returns a new descriptor of ours or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, target, 0) };
    let result = if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        let size = RECEIVE_BUFFER;
        // SAFETY: `fd` is a socket descriptor we own; the option value is a c_int that
        // lives across the call, with its true size.
        let set = unsafe {
            libc::setsockopt(
                fd as libc::c_int,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let result = if set == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
        // SAFETY: closing our duplicate; the server's descriptor stays open.
        unsafe { libc::close(fd as libc::c_int) };
        result
    };
    // SAFETY: closing the pidfd we opened.
    unsafe { libc::close(pidfd as libc::c_int) };
    result
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
