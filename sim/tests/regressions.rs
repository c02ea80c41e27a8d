//! Schedules that once failed, frozen as plain tests so they run forever.
//!
//! Each comes from a proptest failure (the printed minimal input, pasted). The comment
//! says what broke; the test passes once the cause is fixed and fails again if it
//! comes back. Core bugs not yet fixed stay `#[ignore]`d with the reason.

use ocm_sim::schedule::{Network::*, Op::*, Schedule};

fn passes(schedule: Schedule) {
    if let Err(failure) = ocm_sim::run(&schedule) {
        panic!("{failure}");
    }
}

/// Sim bug: a member whose address came from the port step (the plain IPv4 form) while
/// its dual-stack socket was known by the IPv4-mapped IPv6 form never received the
/// shutdown notice: the simulated host compared the two forms as different addresses.
#[test]
fn dual_stack_client_gets_datagrams_sent_to_its_ipv4_form() {
    passes(Schedule {
        seed: 15947485978446817540,
        network: Perfect,
        ops: vec![
            Send { actor: 0, text: 0 },
            Send { actor: 0, text: 0 },
            Join {
                actor: 0,
                room: 0,
                user: 0,
                password: 1,
            },
            Send { actor: 0, text: 0 },
            Join {
                actor: 0,
                room: 0,
                user: 0,
                password: 1,
            },
            StolenToken {
                victim: 0,
                same_room: false,
            },
            Create {
                actor: 0,
                room: 2,
                user: 0,
                password: false,
            },
            Create {
                actor: 0,
                room: 0,
                user: 0,
                password: false,
            },
            Join {
                actor: 0,
                room: 0,
                user: 1,
                password: 1,
            },
            Shutdown,
            Slowloris,
            Create {
                actor: 0,
                room: 0,
                user: 0,
                password: false,
            },
            Advance { ms: 13 },
            Leave { actor: 0 },
            Create {
                actor: 0,
                room: 2,
                user: 0,
                password: false,
            },
            Leave { actor: 0 },
            Send { actor: 0, text: 0 },
            Replay { index: 0 },
            Create {
                actor: 4,
                room: 0,
                user: 0,
                password: false,
            },
            Shutdown,
            Create {
                actor: 0,
                room: 0,
                user: 0,
                password: false,
            },
            Create {
                actor: 0,
                room: 0,
                user: 0,
                password: false,
            },
        ],
    });
}
