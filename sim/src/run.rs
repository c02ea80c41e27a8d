//! Running a whole schedule: the operations, then a wind-down that lets every member go
//! idle, then the end-of-run checks.
//!
//! ```
//! use ocm_sim::schedule::{Network, Op, Schedule};
//! let schedule = Schedule {
//!     seed: 1,
//!     network: Network::Perfect,
//!     ops: vec![
//!         Op::Create { actor: 0, room: 0, user: 0, password: false },
//!         Op::Advance { ms: 1_000 },
//!         Op::Join { actor: 1, room: 0, user: 1, password: 0 },
//!         Op::Advance { ms: 1_000 },
//!         Op::Send { actor: 0, text: 0 },
//!         Op::Advance { ms: 1_000 },
//!     ],
//! };
//! let outcome = ocm_sim::run(&schedule).unwrap();
//! assert_eq!(outcome.relayed, 1);
//! ```

use crate::coverage::Coverage;
use crate::schedule::{config, Schedule};
use crate::trace::Trace;
use crate::world::{Failure, Setup, World};
use ocm_core::Config;
use ocm_core::Machine;
use std::time::Duration;

/// What a run that broke no rule reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Hash of the whole event log.
    pub trace_hash: u64,
    /// Bytes in the event log.
    pub trace_len: u64,
    /// Chat messages the server relayed.
    pub relayed: u64,
    /// Virtual time the run covered.
    pub virtual_time: Duration,
    /// What the run exercised.
    pub coverage: Coverage,
}

/// Runs `schedule` with a trace that keeps its tail for failure reports.
pub fn run(schedule: &Schedule) -> Result<Outcome, Failure> {
    run_with(schedule, Trace::default())
}

/// Runs `schedule` with the given trace.
pub fn run_with(schedule: &Schedule, trace: Trace) -> Result<Outcome, Failure> {
    run_with_config(schedule, config(), trace)
}

/// Runs `schedule` against a server with other limits than [`config`].
pub fn run_with_config(
    schedule: &Schedule,
    limits: Config,
    trace: Trace,
) -> Result<Outcome, Failure> {
    run_with_setup(schedule, &Setup { limits }, trace)
}

/// Runs `schedule` in a world set up as `setup` says.
pub fn run_with_setup(
    schedule: &Schedule,
    setup: &Setup,
    trace: Trace,
) -> Result<Outcome, Failure> {
    let mut world = World::with_setup(schedule, setup, trace);
    for op in &schedule.ops {
        world.apply(*op)?;
        world.think()?;
    }
    wind_down(&mut world)?;
    Ok(Outcome {
        trace_hash: world.trace.hash(),
        trace_len: world.trace.len(),
        relayed: world.server().stats().messages_relayed,
        virtual_time: world.now(),
        coverage: Coverage {
            per_ip_refusals: world.model().per_ip_refusals.get(),
            rooms_per_source_refusals: world.model().rooms_per_source_refusals,
            lingered_to_deadline: world.model().lingers.0,
            linger_ended_by_peer: world.model().lingers.1,
            ..world.coverage.clone()
        },
    })
}

/// Lets handshakes finish, silences everyone, waits past the idle timeout and checks
/// that the server emptied itself and (on a perfect network) that every member got
/// exactly what it was owed.
fn wind_down(world: &mut World) -> Result<(), Failure> {
    let cfg = world.model().cfg.clone();
    world.run_until(world.now() + cfg.handshake_timeout + Duration::from_secs(1))?;
    for actor in &mut world.actors {
        actor.go_silent();
    }
    world.run_until(world.now() + cfg.idle_timeout + Duration::from_secs(2))?;
    while let Some(at) = world.net.next_due() {
        world.run_until(at)?;
    }
    let counts = world.server().counts();
    if counts.rooms + counts.members + counts.connections != 0 {
        return Err(world.fail(format!(
            "everyone silent past the idle timeout, yet the server holds {counts:?}"
        )));
    }
    if world.net.faults().is_perfect() {
        check_deliveries(world)?;
    }
    Ok(())
}

/// Without loss, every member got every datagram it was owed, once, in the order the
/// server produced them (all of them if it kept listening, a subsequence otherwise).
fn check_deliveries(world: &mut World) -> Result<(), Failure> {
    let mut checked = 0;
    for (i, actor) in world.actors.iter().enumerate() {
        for log in &actor.sessions {
            let token =
                <[u8; 32]>::try_from(&log.token[..]).map_err(|_| world.fail("odd token length"))?;
            let owed = world.model.inboxes.get(&token).cloned().unwrap_or_default();
            let ok = if log.intact {
                log.received == owed
            } else {
                is_subsequence(&log.received, &owed)
            };
            if !ok {
                return Err(world.fail(format!(
                    "actor {i}: received {:?}\n  but was owed {:?} (intact: {})",
                    log.received, owed, log.intact
                )));
            }
            checked += 1;
        }
    }
    world.coverage.sessions_checked += checked;
    Ok(())
}

fn is_subsequence<T: PartialEq>(small: &[T], big: &[T]) -> bool {
    let mut rest = big.iter();
    small.iter().all(|x| rest.any(|y| y == x))
}
