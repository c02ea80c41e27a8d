//! Counting what a server process does during a measured phase, for `ocm-load --profile`:
//!
//! - [`Profiler::Callgrind`] runs the server under `valgrind --tool=callgrind
//!   --collect-systime=nsec`, zeroes its counters when the phase begins
//!   (`callgrind_control -z`) and dumps them when it ends (`callgrind_control -d`):
//!   instructions executed in user space, exact and repeatable, and system calls by the
//!   function that made them. Under valgrind `clock_gettime` is a system call (natively
//!   it is a vDSO call), so it is counted on its own. The server runs ~50× slower, so its
//!   batches are larger than natively: read instructions per datagram, not system calls.
//! - [`Profiler::PerfStat`] attaches `perf stat` to the native server for the phase and
//!   counts system calls (in total and of the kinds a UDP or TCP server makes), context
//!   switches and of them the preemptions (switched out while runnable), and the
//!   inter-processor interrupts it sends, from kernel tracepoints: native batching, at
//!   a small cost.
//! - [`Profiler::PerfRecord`] attaches `perf record` (CPU-clock samples with call graphs,
//!   kernel and user space) to the native server for the phase: where its time goes,
//!   the kernel's share included, for `perf report -i DIR/SLUG.PID.data`. No counters.
//!
//! A phase's counters come back as `(name, total)` pairs, to be divided by the work done.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How servers are profiled.
#[derive(Clone, Debug)]
pub enum Profiler {
    /// Not at all: only their CPU time is read.
    Off,
    /// Under callgrind, dumps written into this directory.
    Callgrind(PathBuf),
    /// With `perf stat` attached, its reports written into this directory.
    PerfStat(PathBuf),
    /// With `perf record` attached, its samples written into this directory.
    PerfRecord(PathBuf),
}

/// The system calls `perf stat` counts one by one.
const SYSCALLS: [&str; 16] = [
    "recvmmsg",
    "sendmmsg",
    "recvfrom",
    "sendto",
    "epoll_wait",
    "epoll_pwait",
    "epoll_ctl",
    "read",
    "write",
    "writev",
    "timerfd_settime",
    "futex",
    "accept4",
    "shutdown",
    "close",
    "sched_yield",
];

impl Profiler {
    /// The command that runs `program` for target `slug`.
    pub fn command(&self, program: &Path, slug: &str) -> Command {
        let Profiler::Callgrind(dir) = self else {
            return Command::new(program);
        };
        let mut command = Command::new("valgrind");
        command.args([
            "--tool=callgrind",
            "--collect-systime=nsec",
            "--quiet",
            &format!("--callgrind-out-file={}/{slug}.%p", dir.display()),
        ]);
        command.arg(program);
        command
    }

    /// Whether servers run much slower than natively.
    pub fn is_slow(&self) -> bool {
        matches!(self, Profiler::Callgrind(_))
    }

    /// Begins a measured phase of server `pid`, started for target `slug`.
    pub fn begin(&self, pid: u32, slug: &str) -> io::Result<Probe> {
        match self {
            Profiler::Off => Ok(Probe::Off),
            Profiler::Callgrind(dir) => {
                callgrind_control("-z", pid)?;
                Ok(Probe::Callgrind {
                    prefix: dir.join(slug),
                    pid,
                })
            }
            Profiler::PerfStat(dir) => {
                let out = dir.join(format!("{slug}.{pid}.perf"));
                let mut events = vec!["raw_syscalls:sys_enter".to_string()];
                events.push("context-switches".into());
                events.push("page-faults".into());
                // inter-processor interrupts sent (a VM exit each under virtualization),
                // where the kernel has the tracepoint (6.6 and later)
                if has_tracepoint("ipi/ipi_send_cpu") {
                    events.push("ipi:ipi_send_cpu".into());
                }
                events.extend(SYSCALLS.iter().map(|s| format!("syscalls:sys_enter_{s}")));
                let mut command = Command::new("perf");
                command.args(["stat", "-x", ",", "-e", &events.join(",")]);
                // switched out while still runnable (R, or R+ when preempted): not waiting
                command.args(["-e", "sched:sched_switch"]);
                command.args(["--filter", "prev_state == 0 || prev_state == 256"]);
                let child = attach(command, pid, &out)?;
                Ok(Probe::PerfStat { child, out })
            }
            Profiler::PerfRecord(dir) => {
                let out = dir.join(format!("{slug}.{pid}.data"));
                let mut command = Command::new("perf");
                command.args(["record", "-q", "-g", "-e", "cpu-clock", "-F", "20000"]);
                let child = attach(command, pid, &out)?;
                Ok(Probe::PerfRecord { child })
            }
        }
    }
}

/// A measured phase under way.
pub enum Probe {
    /// Nothing counted.
    Off,
    /// Counters zeroed in the callgrind of `pid`.
    Callgrind {
        /// Where its dumps go, without the `.PID.N` suffix.
        prefix: PathBuf,
        /// The server.
        pid: u32,
    },
    /// `perf stat` attached.
    PerfStat {
        /// The `perf stat` process.
        child: Child,
        /// Its report.
        out: PathBuf,
    },
    /// `perf record` attached.
    PerfRecord {
        /// The `perf record` process.
        child: Child,
    },
}

impl Probe {
    /// Ends the phase; returns its counters.
    pub fn end(self) -> io::Result<Vec<(String, u64)>> {
        match self {
            Probe::Off => Ok(Vec::new()),
            Probe::Callgrind { prefix, pid } => {
                callgrind_control("-d", pid)?;
                let dump = std::fs::read_to_string(latest_dump(&prefix, pid)?)?;
                Ok(callgrind_counters(&dump))
            }
            Probe::PerfStat { mut child, out } => {
                interrupt(&mut child)?;
                Ok(perf_counters(&std::fs::read_to_string(out)?))
            }
            Probe::PerfRecord { mut child } => {
                interrupt(&mut child)?;
                Ok(Vec::new())
            }
        }
    }
}

/// Starts `perf` (`command`, its options given) on process `pid`, writing to `out`, and
/// gives it time to attach.
fn attach(mut command: Command, pid: u32, out: &Path) -> io::Result<Child> {
    let child = command
        .args(["-p", &pid.to_string(), "-o"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300)); // attached
    Ok(child)
}

/// Whether the kernel has tracepoint `group/name` (tracefs, where it is mounted).
fn has_tracepoint(path: &str) -> bool {
    [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .iter()
    .any(|root| Path::new(root).join(path).exists())
}

/// Stops a `perf` we spawned the way Ctrl-C would (it writes its output then), and waits.
fn interrupt(child: &mut Child) -> io::Result<()> {
    let pid = nix_pid(child.id())?;
    // SAFETY: kill sends SIGINT to the perf process we spawned.
    #[allow(unsafe_code)]
    let sent = unsafe { libc::kill(pid, libc::SIGINT) };
    if sent != 0 {
        return Err(io::Error::last_os_error());
    }
    child.wait()?;
    Ok(())
}

fn nix_pid(pid: u32) -> io::Result<libc::pid_t> {
    libc::pid_t::try_from(pid).map_err(io::Error::other)
}

fn callgrind_control(command: &str, pid: u32) -> io::Result<()> {
    let status = Command::new("callgrind_control")
        .args([command, &pid.to_string()])
        .stdout(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "callgrind_control {command} failed"
        )))
    }
}

/// The newest dump `PREFIX.PID.N`.
fn latest_dump(prefix: &Path, pid: u32) -> io::Result<PathBuf> {
    let dir = prefix.parent().unwrap_or(Path::new("."));
    let name = prefix.file_name().unwrap_or_default().to_string_lossy();
    let stem = format!("{name}.{pid}.");
    std::fs::read_dir(dir)?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let n: u32 = name.strip_prefix(&stem)?.parse().ok()?;
            Some((n, dir.join(name)))
        })
        .max()
        .map(|(_, path)| path)
        .ok_or_else(|| io::Error::other(format!("no callgrind dump {stem}*")))
}

/// Instructions, system calls, and the system calls of the functions that made the
/// most (`clock_gettime` always), from a callgrind dump made with `--collect-systime`.
pub fn callgrind_counters(dump: &str) -> Vec<(String, u64)> {
    let mut events: Vec<&str> = Vec::new();
    let mut totals: Vec<u64> = Vec::new();
    let mut names: std::collections::HashMap<&str, &str> = Default::default();
    let mut by_fn: std::collections::BTreeMap<String, u64> = Default::default();
    let mut current: Option<&str> = None;
    let mut call_cost_next = false;
    for line in dump.lines() {
        if let Some(rest) = line.strip_prefix("events:") {
            events = rest.split_whitespace().collect();
        } else if let Some(rest) = line.strip_prefix("summary:") {
            totals = rest
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
        } else if let Some(rest) = line.strip_prefix("fn=") {
            current = Some(compressed_name(&mut names, rest));
        } else if let Some(rest) = line.strip_prefix("cfn=") {
            compressed_name(&mut names, rest);
        } else if line.starts_with("calls=") {
            // the next cost line is the inclusive cost of a call, not the function's own
            call_cost_next = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit() || "+-*".contains(c)) {
            if std::mem::take(&mut call_cost_next) {
                continue;
            }
            let sys = events.iter().position(|e| *e == "sysCount");
            let value = sys.and_then(|i| line.split_whitespace().nth(i + 1));
            if let (Some(f), Some(v)) = (current, value.and_then(|v| v.parse::<u64>().ok())) {
                *by_fn.entry(f.to_string()).or_default() += v;
            }
        }
    }
    let total = |name: &str| {
        let i = events.iter().position(|e| *e == name);
        i.and_then(|i| totals.get(i)).copied().unwrap_or(0)
    };
    let clock: u64 = by_fn
        .iter()
        .filter(|(f, _)| f.starts_with("clock_gettime"))
        .map(|(_, n)| n)
        .sum();
    let mut counters = vec![
        ("instructions".to_string(), total("Ir")),
        (
            "syscalls".to_string(),
            total("sysCount").saturating_sub(clock),
        ),
        ("clock_gettime".to_string(), clock),
    ];
    let mut top: Vec<(String, u64)> = by_fn
        .into_iter()
        .filter(|(f, n)| *n > 0 && !f.starts_with("clock_gettime"))
        .collect();
    top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counters.extend(top.into_iter().take(6).map(|(f, n)| (format!("in {f}"), n)));
    counters
}

/// `(123) name` defines id 123; `(123)` refers to it.
fn compressed_name<'a>(
    names: &mut std::collections::HashMap<&'a str, &'a str>,
    rest: &'a str,
) -> &'a str {
    match rest.split_once(' ') {
        Some((id, name)) => {
            names.insert(id, name);
            name
        }
        None => names.get(rest).copied().unwrap_or(rest),
    }
}

/// `perf stat -x ,` lines: `count,unit,event,...`; the tracepoints' prefixes dropped.
pub fn perf_counters(report: &str) -> Vec<(String, u64)> {
    report
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(',');
            let count: u64 = fields.next()?.trim().parse().ok()?;
            let event = fields.nth(1)?;
            let name = event
                .strip_prefix("syscalls:sys_enter_")
                .or_else(|| {
                    event
                        .strip_prefix("raw_syscalls:sys_enter")
                        .map(|_| "syscalls")
                })
                .unwrap_or(match event {
                    "sched:sched_switch" => "preempted",
                    "ipi:ipi_send_cpu" => "ipis",
                    other => other,
                });
            Some((name.to_string(), count))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callgrind_dump_gives_totals_and_calls_by_function_without_call_costs() {
        let dump = "events: Ir sysCount\nsummary: 1000 7\n\
            fn=(1) main\n5 100 0\ncfn=(2) recvmmsg\ncalls=3 0\n6 50 3\n\
            fn=(2)\n0 50 3\n\
            fn=(3) clock_gettime@@GLIBC_2.17\n+1 10 4\n";
        let counters = callgrind_counters(dump);
        assert_eq!(
            counters,
            [
                ("instructions".to_string(), 1000),
                ("syscalls".to_string(), 3),
                ("clock_gettime".to_string(), 4),
                ("in recvmmsg".to_string(), 3),
            ]
        );
    }

    #[test]
    fn perf_stat_lines_give_counts_by_short_name() {
        let report = "# started on ...\n\n\
            1234,,raw_syscalls:sys_enter,1000,100.00,,\n\
            56,,context-switches,1000,100.00,,\n\
            <not counted>,,syscalls:sys_enter_futex,0,0.00,,\n\
            78,,syscalls:sys_enter_recvmmsg,1000,100.00,,\n\
            9,,sched:sched_switch,1000,100.00,,\n";
        assert_eq!(
            perf_counters(report),
            [
                ("syscalls".to_string(), 1234),
                ("context-switches".to_string(), 56),
                ("recvmmsg".to_string(), 78),
                ("preempted".to_string(), 9),
            ]
        );
    }
}
