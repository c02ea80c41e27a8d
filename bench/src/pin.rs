//! CPU affinity for the load runs: the server under test on a core of its own, the load
//! tool on the others.
//!
//! On a shared pair of cores, a server's `sendmmsg` now and then wakes a receiving load
//! thread on the server's own core, which then preempts it; whether a run falls into
//! that pattern changes its batches and with them the CPU per delivery, by ±10 % from
//! run to run, for every server alike. With the server alone on its core nothing
//! preempts it, it waits for its datagrams, and a measurement repeats within a few
//! per cent.

#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Splits the CPUs this process may run on: the first is the servers', the calling
/// thread (and the threads it starts from now on) keeps the others. Returns the
/// servers' CPU, or `None` (nothing changed) if there is only one or the call fails.
pub fn split() -> Option<usize> {
    let allowed = allowed().ok()?;
    let mut cpus = (0..libc::CPU_SETSIZE as usize).filter(|&cpu| {
        // SAFETY: `cpu` is below CPU_SETSIZE, within the set.
        unsafe { libc::CPU_ISSET(cpu, &allowed) }
    });
    let server = cpus.next()?;
    let mut rest = allowed;
    // SAFETY: `server` is below CPU_SETSIZE.
    unsafe { libc::CPU_CLR(server, &mut rest) };
    cpus.next()?;
    set_affinity(&rest).ok()?;
    Some(server)
}

/// Makes `command` start its process on `cpu` only.
pub fn server_on(command: &mut Command, cpu: usize) {
    // SAFETY: the closure runs in the child between fork and exec and makes one system
    // call (`sched_setaffinity`), which is async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            set_affinity(&set)
        });
    }
}

fn allowed() -> io::Result<libc::cpu_set_t> {
    // SAFETY: `cpu_set_t` is a plain bit set; all-zero is the empty set. The kernel
    // writes at most its size; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(0, size, &mut set) == 0 {
            Ok(set)
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid `cpu_set_t` of the size given; pid 0 is the calling thread.
    let done = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPUs in a `Cpus_allowed_list` line ("0-2,5").
    fn allowed_list(status: &str) -> Vec<usize> {
        let list = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .expect("a Cpus_allowed_list line")
            .trim();
        let mut cpus = Vec::new();
        for part in list.split(',') {
            let (from, to) = part.split_once('-').unwrap_or((part, part));
            cpus.extend(from.parse::<usize>().unwrap()..=to.parse::<usize>().unwrap());
        }
        cpus
    }

    #[test]
    fn the_load_keeps_every_cpu_but_the_servers_and_a_server_gets_that_one() {
        // In a thread of its own: the pinning stays with it.
        let (before, split, after) = std::thread::spawn(|| {
            let before = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            let split = split();
            let after = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            (allowed_list(&before), split, allowed_list(&after))
        })
        .join()
        .unwrap();
        let Some(server) = split else {
            assert_eq!(before.len(), 1, "one CPU: nothing to split");
            assert_eq!(after, before);
            return;
        };
        assert_eq!(server, before[0]);
        assert_eq!(after, before[1..]);
        let mut command = Command::new("cat");
        command.arg("/proc/self/status");
        server_on(&mut command, server);
        let out = command.output().expect("cat runs");
        assert_eq!(
            allowed_list(&String::from_utf8(out.stdout).unwrap()),
            [server]
        );
    }
}
