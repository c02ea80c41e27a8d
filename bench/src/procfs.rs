//! What `/proc` says about a server process and its socket (Linux): CPU time used by all
//! its threads, whether it is stopped, and the receive queue and drop count of a UDP socket.

use std::io;
use std::time::Duration;

/// CPU time of a process, all its threads together, living or gone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// In user space (`utime`).
    pub user: Duration,
    /// In the kernel on its behalf (`stime`).
    pub system: Duration,
}

impl CpuTime {
    /// User plus system.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The time spent since `earlier`.
    pub fn since(&self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// The CPU time of process `pid` (`utime` and `stime` of `/proc/PID/stat`, in clock
/// ticks: 10 ms where `CLK_TCK` is 100).
pub fn cpu_time(pid: u32) -> io::Result<CpuTime> {
    stat_cpu_time(&format!("/proc/{pid}/stat"))
}

/// The time the thread of process `pid` named `name` (`/proc/PID/task/TID/comm`) has
/// run on a CPU, in nanoseconds (the first field of its `schedstat`): fine enough for a
/// thread that runs a few hundred microseconds a second, where clock ticks see nothing.
pub fn thread_run_time(pid: u32, name: &str) -> io::Result<Duration> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let dir = task?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            return schedstat_run_time(&dir.join("schedstat"));
        }
    }
    Err(io::Error::other(format!(
        "process {pid} has no thread {name:?}"
    )))
}

/// How long each living thread of process `pid` has run on a CPU, in nanoseconds
/// (`schedstat`), by thread id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunTimes(std::collections::BTreeMap<u32, Duration>);

impl RunTimes {
    /// The run time between `earlier` and these, all threads together; `None` if a
    /// thread living then is gone now (its time went with it: use clock ticks instead).
    pub fn since(&self, earlier: &RunTimes) -> Option<Duration> {
        let mut total = Duration::ZERO;
        for (tid, before) in &earlier.0 {
            total += self.0.get(tid)?.saturating_sub(*before);
        }
        let born = self
            .0
            .iter()
            .filter(|(tid, _)| !earlier.0.contains_key(tid));
        Some(total + born.map(|(_, run)| *run).sum::<Duration>())
    }
}

/// The run time of every thread of process `pid`: nanosecond counts, where `utime` and
/// `stime` come in 10 ms ticks (±2.5 % on a phase of 400 ms).
pub fn run_times(pid: u32) -> io::Result<RunTimes> {
    let mut times = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?;
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread that ends between the listing and the read is not counted.
        if let Ok(run) = schedstat_run_time(&task.path().join("schedstat")) {
            times.insert(tid, run);
        }
    }
    Ok(RunTimes(times))
}

fn schedstat_run_time(path: &std::path::Path) -> io::Result<Duration> {
    let schedstat = std::fs::read_to_string(path)?;
    let nanos = schedstat
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::other("unexpected schedstat"))?;
    Ok(Duration::from_nanos(nanos))
}

fn stat_cpu_time(path: &str) -> io::Result<CpuTime> {
    let stat = std::fs::read_to_string(path)?;
    // The command name, field 2, is in parentheses and may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("unexpected /proc/PID/stat"))?;
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = || -> io::Result<u64> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("unexpected /proc/PID/stat"))
    };
    let tick = Duration::from_secs(1) / clock_ticks() as u32;
    Ok(CpuTime {
        user: tick * next()? as u32,
        system: tick * next()? as u32,
    })
}

/// The scheduling state of process `pid` (field 3 of `/proc/PID/stat`: `R` running,
/// `S` sleeping, `T` stopped, ...).
pub fn state(pid: u32) -> io::Result<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .ok_or_else(|| io::Error::other("unexpected /proc/PID/stat"))
}

#[allow(unsafe_code)]
fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// The descriptor number under which process `pid` holds the socket with this inode.
pub fn socket_fd(pid: u32, inode: u64) -> io::Result<i32> {
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let entry = entry?;
        if std::fs::read_link(entry.path()).is_ok_and(|link| link.as_os_str() == wanted.as_str()) {
            if let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                return Ok(fd);
            }
        }
    }
    Err(io::Error::other(format!(
        "process {pid} holds no socket {inode}"
    )))
}

/// The inode of the IPv4 UDP socket bound to local port `port`.
pub fn udp_inode(port: u16) -> io::Result<u64> {
    let table = std::fs::read_to_string("/proc/net/udp")?;
    udp_line(&table, port)
        .and_then(|fields| fields.get(9)?.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no UDP socket on {port}")))
}

/// The state of one UDP socket, from `/proc/net/udp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpQueue {
    /// Bytes waiting in the receive queue.
    pub rx_queue: u64,
    /// Datagrams the kernel dropped because the receive queue was full.
    pub drops: u64,
}

/// The IPv4 UDP socket bound to local port `port`.
pub fn udp_queue(port: u16) -> io::Result<UdpQueue> {
    let table = std::fs::read_to_string("/proc/net/udp")?;
    parse_udp(&table, port).ok_or_else(|| io::Error::other(format!("no UDP socket on {port}")))
}

fn parse_udp(table: &str, port: u16) -> Option<UdpQueue> {
    let fields = udp_line(table, port)?;
    let (_, rx) = fields.get(4)?.split_once(':')?;
    Some(UdpQueue {
        rx_queue: u64::from_str_radix(rx, 16).ok()?,
        drops: fields.last()?.parse().ok()?,
    })
}

/// The fields of the line of the socket bound to local port `port`.
fn udp_line(table: &str, port: u16) -> Option<Vec<&str>> {
    let suffix = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(1).is_some_and(|local| local.ends_with(&suffix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_udp_line_gives_its_queue_and_drops() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1234: 0100007F:1F41 00000000:0000 07 00000000:00000A00 00:00000000 00000000  1000        0 99 2 0000000000000000 17
 1235: 0100007F:1F42 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 98 2 0000000000000000 0
";
        assert_eq!(
            parse_udp(table, 8001),
            Some(UdpQueue {
                rx_queue: 0xA00,
                drops: 17
            })
        );
        assert_eq!(parse_udp(table, 8003), None);
    }

    #[test]
    fn run_times_count_every_thread_and_give_up_when_one_is_gone() {
        let ms = |n| Duration::from_millis(n);
        let times = |pairs: &[(u32, u64)]| {
            RunTimes(pairs.iter().map(|(tid, run)| (*tid, ms(*run))).collect())
        };
        let before = times(&[(1, 100), (2, 40)]);
        // thread 3 was born during the phase: all its time counts
        let after = times(&[(1, 130), (2, 45), (3, 7)]);
        assert_eq!(after.since(&before), Some(ms(30 + 5 + 7)));
        // thread 2 ended during the phase: its time is lost, so no figure
        assert_eq!(times(&[(1, 130)]).since(&before), None);
        // and a busy process's one thread is read, in nanoseconds (not this process:
        // the test harness's threads come and go)
        let mut busy = std::process::Command::new("yes")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = run_times(busy.id()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let spent = loop {
            std::thread::sleep(ms(20));
            let spent = run_times(busy.id()).unwrap().since(&start);
            // on a loaded machine it may take a while to be given a CPU at all
            if spent != Some(Duration::ZERO) || std::time::Instant::now() > deadline {
                break spent;
            }
        };
        busy.kill().unwrap();
        busy.wait().unwrap();
        assert!(spent.is_some_and(|d| d > Duration::ZERO), "{spent:?}");
    }

    #[test]
    fn this_process_has_used_some_cpu_and_a_bound_socket_is_listed() {
        let busy = std::time::Instant::now();
        let mut x = 0u64;
        while busy.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        assert!(cpu_time(std::process::id()).unwrap().user > Duration::ZERO);
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        assert_eq!(udp_queue(port).unwrap().rx_queue, 0);
        let fd = socket_fd(std::process::id(), udp_inode(port).unwrap()).unwrap();
        assert_eq!(fd, std::os::fd::AsRawFd::as_raw_fd(&socket));
    }

    #[test]
    fn a_stopped_process_shows_as_stopped() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert_ne!(state(pid).unwrap(), 'T');
        std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap();
        let stopped = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            state(pid).unwrap() == 'T'
        });
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(stopped);
    }
}
