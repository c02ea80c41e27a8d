//! The Redis backend against a real `redis-server`, one private server per test
//! (`ocm_cluster::test_server`): under `CI=true` a Redis that cannot be started fails
//! the test, elsewhere the test is skipped with a line on stderr.
//!
//! Every wait is bounded ([`WAIT`]): a broken backend fails a test in seconds.

use bytes::Bytes;
use futures_lite::future;
use ocm_cluster::redis::{RedisConfig, RedisPublisher, RedisRegistry, RedisSubscriber};
use ocm_cluster::test_server::{redis_or_skip, RedisServer};
use ocm_cluster::{BusEvent, ClusterLink, LinkConfig, LinkStats, Registry};
use ocm_core::cluster::registry::{LeaseState, RegistryAnswer, RegistryRequest, Unavailable};
use ocm_core::cluster::{Claim, Epoch, NodeId};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest any test waits for one thing to happen.
const WAIT: Duration = Duration::from_secs(10);

fn node(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

fn claim(name: &str, epoch: u64) -> Claim {
    Claim {
        node: node(name),
        epoch: Epoch(epoch),
    }
}

fn config(redis: &RedisServer) -> RedisConfig {
    let mut config = RedisConfig::new(&redis.url()).unwrap();
    config.response_timeout = Duration::from_millis(500);
    config.connect_timeout = Duration::from_millis(500);
    config.retry_after = Duration::from_millis(50);
    config.ping_interval = Duration::from_millis(200);
    config
}

fn create(room: &str, claim: &Claim, lease: Duration, host: &str) -> RegistryRequest {
    RegistryRequest::Create {
        room: room.into(),
        claim: claim.clone(),
        lease,
        record: Bytes::from(format!("record of {claim}")),
        host: host.into(),
    }
}

fn join(room: &str, claim: &Claim, via: &str, username: &str, max: usize) -> RegistryRequest {
    RegistryRequest::Join {
        room: room.into(),
        claim: claim.clone(),
        node: node(via),
        username: username.into(),
        max_members: max,
    }
}

fn renew(via: &str, lease: Duration, owned: &[(&str, &Claim)]) -> RegistryRequest {
    RegistryRequest::Renew {
        node: node(via),
        lease,
        owned: owned
            .iter()
            .map(|(room, claim)| (Arc::from(*room), (*claim).clone()))
            .collect(),
        mirrored: Vec::new(),
    }
}

async fn exec(registry: &mut RedisRegistry, request: &RegistryRequest) -> RegistryAnswer {
    registry.execute(request).await.expect("redis answers")
}

/// Runs `request` until Redis answers (after a restart the first tries may fail).
async fn exec_retrying(registry: &mut RedisRegistry, request: &RegistryRequest) -> RegistryAnswer {
    let deadline = Instant::now() + WAIT;
    loop {
        match registry.execute(request).await {
            Ok(answer) => return answer,
            Err(error) if Instant::now() < deadline => {
                eprintln!("retrying after {error}");
                async_io::Timer::after(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("redis never answered: {error}"),
        }
    }
}

async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn pttl(redis: &RedisServer, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut raw(redis).await)
        .await
        .unwrap()
}

/// Waits until `count` subscribers listen on `room`'s channel.
async fn subscribed(redis: &RedisServer, room: &str, count: i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(format!("ocm:chat:{room}"))
            .query_async(&mut raw(redis).await)
            .await
            .unwrap();
        if n == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{room}: {n} subscribers, not {count}"
        );
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
}

/// Waits until `done` holds.
async fn until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}");
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
}

async fn recv<T>(rx: &async_channel::Receiver<T>) -> T {
    future::or(async { rx.recv().await.expect("link alive") }, async {
        async_io::Timer::after(WAIT).await;
        panic!("nothing arrived in {WAIT:?}")
    })
    .await
}

fn link(redis: &RedisServer, bus: usize) -> ClusterLink {
    let config = config(redis);
    ClusterLink::start(
        RedisRegistry::new(&config),
        RedisPublisher::new(&config),
        RedisSubscriber::new(&config),
        LinkConfig {
            bus,
            ..LinkConfig::default()
        },
        |task| smol::spawn(task).detach(),
    )
}

fn message(room: &str, payload: &str) -> BusEvent {
    BusEvent::Message {
        room: room.into(),
        payload: Bytes::from(payload.to_owned()),
    }
}

#[test]
fn a_name_is_created_once_across_two_clients() {
    let Some(redis) = redis_or_skip("a_name_is_created_once_across_two_clients") else {
        return;
    };
    smol::block_on(async {
        let (mut a, mut b) = (
            RedisRegistry::new(&config(&redis)),
            RedisRegistry::new(&config(&redis)),
        );
        let lease = Duration::from_secs(30);
        for round in 0..20u64 {
            let room = format!("room {round}");
            let (ca, cb) = (claim("node-a", round), claim("node-b", round + 100));
            let (ra, rb) = future::zip(
                a.execute(&create(&room, &ca, lease, "alice")),
                b.execute(&create(&room, &cb, lease, "bob")),
            )
            .await;
            let winner = match (ra.unwrap(), rb.unwrap()) {
                (RegistryAnswer::Created, RegistryAnswer::Exists(holder)) => {
                    assert_eq!(holder, ca);
                    ca
                }
                (RegistryAnswer::Exists(holder), RegistryAnswer::Created) => {
                    assert_eq!(holder, cb);
                    cb
                }
                other => panic!("{room}: exactly one create must win: {other:?}"),
            };
            let found = exec(&mut a, &RegistryRequest::Lookup { room: room.into() }).await;
            assert_eq!(
                found,
                RegistryAnswer::Found {
                    record: Bytes::from(format!("record of {winner}")),
                    claim: winner,
                }
            );
        }
        let missing = exec(
            &mut b,
            &RegistryRequest::Lookup {
                room: "nope".into(),
            },
        )
        .await;
        assert_eq!(missing, RegistryAnswer::NotFound);
    });
}

#[test]
fn an_expired_lease_frees_the_name_and_the_old_members() {
    let Some(redis) = redis_or_skip("an_expired_lease_frees_the_name_and_the_old_members") else {
        return;
    };
    smol::block_on(async {
        let mut a = RedisRegistry::new(&config(&redis));
        let mut b = RedisRegistry::new(&config(&redis));
        let (old, new) = (claim("node-a", 1), claim("node-b", 2));
        let long = Duration::from_secs(30);
        exec(&mut b, &renew("node-b", long, &[])).await;
        let short = Duration::from_millis(300);
        assert_eq!(
            exec(&mut a, &create("lobby", &old, short, "alice")).await,
            RegistryAnswer::Created
        );
        assert_eq!(
            exec(&mut b, &create("lobby", &new, long, "bob")).await,
            RegistryAnswer::Exists(old.clone()),
            "held until the lease runs out"
        );
        let deadline = Instant::now() + WAIT;
        while exec(&mut b, &create("lobby", &new, long, "bob")).await != RegistryAnswer::Created {
            assert!(Instant::now() < deadline, "the lease never expired");
            async_io::Timer::after(Duration::from_millis(50)).await;
        }
        // The old holder's renewal now finds the name given out: it must close its room.
        let renewed = exec(&mut a, &renew("node-a", short, &[("lobby", &old)])).await;
        let RegistryAnswer::Renewed { owned, .. } = renewed else {
            panic!("{renewed:?}");
        };
        assert_eq!(owned, [LeaseState::Lost]);
        // The new room starts with only its own host: alice's old seat is gone.
        assert_eq!(
            exec(&mut b, &join("lobby", &new, "node-b", "alice", 2)).await,
            RegistryAnswer::Joined
        );
        assert_eq!(
            exec(&mut b, &join("lobby", &old, "node-a", "carol", 9)).await,
            RegistryAnswer::RoomGone
        );
    });
}

#[test]
fn only_the_holder_renews_or_releases() {
    let Some(redis) = redis_or_skip("only_the_holder_renews_or_releases") else {
        return;
    };
    smol::block_on(async {
        let mut a = RedisRegistry::new(&config(&redis));
        let mut b = RedisRegistry::new(&config(&redis));
        let holder = claim("node-a", 7);
        let lease = Duration::from_secs(5);
        exec(&mut a, &create("lobby", &holder, lease, "alice")).await;
        for intruder in [claim("node-b", 7), claim("node-a", 8)] {
            let long = Duration::from_secs(3600);
            let answer = exec(&mut b, &renew("node-b", long, &[("lobby", &intruder)])).await;
            let RegistryAnswer::Renewed { owned, .. } = answer else {
                panic!("{answer:?}");
            };
            assert_eq!(owned, [LeaseState::Lost], "{intruder}");
            for key in ["ocm:room:lobby", "ocm:record:lobby", "ocm:members:lobby"] {
                let left = pttl(&redis, key).await;
                assert!(
                    left > 0 && left <= 5000,
                    "{key}: a refused renewal extended it to {left} ms"
                );
            }
            let release = RegistryRequest::Release {
                room: "lobby".into(),
                claim: intruder,
            };
            assert_eq!(
                exec(&mut b, &release).await,
                RegistryAnswer::Released(false)
            );
        }
        let answer = exec(
            &mut a,
            &renew("node-a", Duration::from_secs(60), &[("lobby", &holder)]),
        )
        .await;
        let RegistryAnswer::Renewed { owned, .. } = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(owned, [LeaseState::Held]);
        assert!(
            pttl(&redis, "ocm:members:lobby").await > 5000,
            "the holder extends everything"
        );
        let release = RegistryRequest::Release {
            room: "lobby".into(),
            claim: holder.clone(),
        };
        assert_eq!(exec(&mut a, &release).await, RegistryAnswer::Released(true));
        let lookup = RegistryRequest::Lookup {
            room: "lobby".into(),
        };
        assert_eq!(exec(&mut b, &lookup).await, RegistryAnswer::NotFound);
        assert_eq!(
            pttl(&redis, "ocm:members:lobby").await,
            -2,
            "members gone with the room"
        );
        let answer = exec(&mut a, &renew("node-a", lease, &[("lobby", &holder)])).await;
        let RegistryAnswer::Renewed { owned, .. } = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(owned, [LeaseState::Missing]);
    });
}

#[test]
fn joins_through_any_node_keep_usernames_unique_and_the_room_bounded() {
    let Some(redis) = redis_or_skip("joins_through_any_node") else {
        return;
    };
    smol::block_on(async {
        let mut a = RedisRegistry::new(&config(&redis));
        let mut b = RedisRegistry::new(&config(&redis));
        let lease = Duration::from_secs(30);
        exec(&mut a, &renew("node-a", lease, &[])).await;
        exec(&mut b, &renew("node-b", lease, &[])).await;
        let room = claim("node-a", 3);
        exec(&mut a, &create("lobby", &room, lease, "alice")).await;
        let RegistryAnswer::Found { claim: seen, .. } = exec(
            &mut b,
            &RegistryRequest::Lookup {
                room: "lobby".into(),
            },
        )
        .await
        else {
            panic!("lobby exists");
        };
        assert_eq!(seen, room);
        let max = 3;
        assert_eq!(
            exec(&mut b, &join("lobby", &room, "node-b", "bob", max)).await,
            RegistryAnswer::Joined
        );
        assert_eq!(
            exec(&mut b, &join("lobby", &room, "node-b", "alice", max)).await,
            RegistryAnswer::UsernameTaken
        );
        assert_eq!(
            exec(&mut a, &join("lobby", &room, "node-a", "bob", max)).await,
            RegistryAnswer::UsernameTaken
        );
        assert_eq!(
            exec(&mut a, &join("lobby", &room, "node-a", "carol", max)).await,
            RegistryAnswer::Joined
        );
        assert_eq!(
            exec(&mut b, &join("lobby", &room, "node-b", "dave", max)).await,
            RegistryAnswer::RoomFull
        );
        let leave = |via: &str, username: &str| RegistryRequest::Leave {
            room: "lobby".into(),
            claim: room.clone(),
            node: node(via),
            username: username.into(),
        };
        assert_eq!(
            exec(&mut a, &leave("node-a", "bob")).await,
            RegistryAnswer::Left(false),
            "bob is node-b's"
        );
        assert_eq!(
            exec(&mut b, &leave("node-b", "bob")).await,
            RegistryAnswer::Left(true)
        );
        assert_eq!(
            exec(&mut b, &leave("node-b", "bob")).await,
            RegistryAnswer::Left(false)
        );
        assert_eq!(
            exec(&mut b, &join("lobby", &room, "node-b", "dave", max)).await,
            RegistryAnswer::Joined
        );
        let stale = claim("node-a", 4);
        assert_eq!(
            exec(&mut b, &join("lobby", &stale, "node-b", "erin", 9)).await,
            RegistryAnswer::RoomGone
        );
    });
}

#[test]
fn a_dead_nodes_members_give_back_their_names_and_seats() {
    let Some(redis) = redis_or_skip("a_dead_nodes_members_give_back_their_names_and_seats") else {
        return;
    };
    smol::block_on(async {
        let mut r = RedisRegistry::new(&config(&redis));
        let lease = Duration::from_secs(30);
        exec(&mut r, &renew("node-a", lease, &[])).await;
        exec(&mut r, &renew("node-c", lease, &[])).await;
        exec(&mut r, &renew("node-b", Duration::from_millis(200), &[])).await;
        let room = claim("node-a", 1);
        exec(&mut r, &create("lobby", &room, lease, "alice")).await;
        let max = 3;
        for name in ["bob", "dave"] {
            assert_eq!(
                exec(&mut r, &join("lobby", &room, "node-b", name, max)).await,
                RegistryAnswer::Joined
            );
        }
        assert_eq!(
            exec(&mut r, &join("lobby", &room, "node-c", "bob", max)).await,
            RegistryAnswer::UsernameTaken
        );
        assert_eq!(
            exec(&mut r, &join("lobby", &room, "node-c", "carol", max)).await,
            RegistryAnswer::RoomFull
        );
        let deadline = Instant::now() + WAIT;
        while pttl(&redis, "ocm:node:node-b").await != -2 {
            assert!(Instant::now() < deadline, "node-b's lease never expired");
            async_io::Timer::after(Duration::from_millis(20)).await;
        }
        assert_eq!(
            exec(&mut r, &join("lobby", &room, "node-c", "carol", max)).await,
            RegistryAnswer::Joined,
            "dead members' seats are free"
        );
        assert_eq!(
            exec(&mut r, &join("lobby", &room, "node-c", "bob", max)).await,
            RegistryAnswer::Joined,
            "and their names"
        );
        let members: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg("ocm:members:lobby")
            .query_async(&mut raw(&redis).await)
            .await
            .unwrap();
        let mut members: Vec<_> = members.iter().map(|(u, n)| format!("{u}@{n}")).collect();
        members.sort();
        assert_eq!(members, ["alice@node-a", "bob@node-c", "carol@node-c"]);
    });
}

#[test]
fn after_a_redis_restart_renewal_says_what_was_lost_and_restore_puts_it_back() {
    let Some(mut redis) = redis_or_skip("after_a_redis_restart_renewal_says_what_was_lost") else {
        return;
    };
    smol::block_on(async {
        let mut a = RedisRegistry::new(&config(&redis));
        let mut b = RedisRegistry::new(&config(&redis));
        let lease = Duration::from_secs(30);
        let (lobby, den) = (claim("node-a", 1), claim("node-a", 2));
        let first = exec(&mut a, &renew("node-a", lease, &[])).await;
        assert!(
            matches!(
                first,
                RegistryAnswer::Renewed {
                    node_was_missing: true,
                    ..
                }
            ),
            "{first:?}"
        );
        exec(&mut b, &renew("node-b", lease, &[])).await;
        exec(&mut a, &create("lobby", &lobby, lease, "alice")).await;
        exec(&mut a, &create("den", &den, lease, "alice")).await;
        exec(&mut a, &join("lobby", &lobby, "node-b", "bob", 9)).await;
        let owned = [("lobby", &lobby), ("den", &den)];
        let steady = exec(&mut a, &renew("node-a", lease, &owned)).await;
        assert_eq!(
            steady,
            RegistryAnswer::Renewed {
                node_was_missing: false,
                owned: vec![LeaseState::Held, LeaseState::Held],
                mirrored: vec![],
            }
        );

        redis.restart().unwrap();
        // Before node-a restores, node-b creates `den` anew in the empty Redis.
        exec_retrying(&mut b, &renew("node-b", lease, &[])).await;
        let taken = claim("node-b", 9);
        assert_eq!(
            exec(&mut b, &create("den", &taken, lease, "zed")).await,
            RegistryAnswer::Created
        );
        let after = exec_retrying(&mut a, &renew("node-a", lease, &owned)).await;
        assert_eq!(
            after,
            RegistryAnswer::Renewed {
                node_was_missing: true,
                owned: vec![LeaseState::Missing, LeaseState::Lost],
                mirrored: vec![],
            }
        );
        let restore = |room: &str, claim: &Claim, names: &[&str]| RegistryRequest::Restore {
            room: room.into(),
            claim: claim.clone(),
            lease,
            record: Some(Bytes::from(format!("record of {claim}"))),
            node: node("node-a"),
            usernames: names.iter().map(|n| Arc::from(*n)).collect(),
        };
        assert_eq!(
            exec(&mut a, &restore("lobby", &lobby, &["alice"])).await,
            RegistryAnswer::Restored {
                held: true,
                taken: vec![]
            }
        );
        assert_eq!(
            exec(&mut a, &restore("den", &den, &["alice"])).await,
            RegistryAnswer::Restored {
                held: false,
                taken: vec![]
            }
        );
        // node-b puts its member back, without a record (it does not hold the room).
        let back = RegistryRequest::Restore {
            room: "lobby".into(),
            claim: lobby.clone(),
            lease,
            record: None,
            node: node("node-b"),
            usernames: vec!["bob".into(), "alice".into()],
        };
        assert_eq!(
            exec(&mut b, &back).await,
            RegistryAnswer::Restored {
                held: true,
                taken: vec!["alice".into()]
            }
        );
        assert_eq!(
            exec(
                &mut b,
                &RegistryRequest::Lookup {
                    room: "lobby".into()
                }
            )
            .await,
            RegistryAnswer::Found {
                claim: lobby.clone(),
                record: Bytes::from(format!("record of {lobby}")),
            }
        );
        assert_eq!(
            exec(&mut a, &join("lobby", &lobby, "node-a", "bob", 9)).await,
            RegistryAnswer::UsernameTaken
        );
        assert!(
            pttl(&redis, "ocm:members:lobby").await > 0,
            "restored members expire with the lease"
        );
    });
}

#[test]
fn pubsub_carries_messages_between_two_connections_in_order() {
    let Some(redis) = redis_or_skip("pubsub_carries_messages_between_two_connections") else {
        return;
    };
    smol::block_on(async {
        let (a, b) = (link(&redis, 4096), link(&redis, 4096));
        b.set_rooms(vec!["lobby".into(), "den".into()]);
        subscribed(&redis, "lobby", 1).await;
        subscribed(&redis, "den", 1).await;
        for i in 0..300 {
            a.publish("lobby".into(), Bytes::from(format!("m{i}")));
            if i % 100 == 0 {
                a.publish("elsewhere".into(), Bytes::from_static(b"not for b"));
            }
        }
        a.publish("den".into(), Bytes::from_static(b"last"));
        for i in 0..300 {
            assert_eq!(recv(b.bus()).await, message("lobby", &format!("m{i}")));
        }
        assert_eq!(recv(b.bus()).await, message("den", "last"));
        b.set_rooms(vec!["den".into()]);
        subscribed(&redis, "lobby", 0).await;
        a.publish("lobby".into(), Bytes::from_static(b"gone"));
        a.publish("den".into(), Bytes::from_static(b"still"));
        assert_eq!(recv(b.bus()).await, message("den", "still"));
        // The publisher counts a batch once Redis has answered it, which can be after
        // the subscriber got it.
        until(|| LinkStats::get(&a.stats().published) == 306).await;
        assert_eq!(LinkStats::get(&b.stats().received), 302);
    });
}

#[test]
fn the_subscriber_resubscribes_after_a_redis_restart() {
    let Some(mut redis) = redis_or_skip("the_subscriber_resubscribes_after_a_redis_restart") else {
        return;
    };
    smol::block_on(async {
        let (a, b) = (link(&redis, 4096), link(&redis, 4096));
        b.set_rooms(vec!["lobby".into()]);
        subscribed(&redis, "lobby", 1).await;
        a.publish("lobby".into(), Bytes::from_static(b"before"));
        assert_eq!(recv(b.bus()).await, message("lobby", "before"));

        redis.restart().unwrap();
        let event = recv(b.bus()).await;
        assert!(matches!(event, BusEvent::Reconnected { .. }), "{event:?}");
        subscribed(&redis, "lobby", 1).await;
        // The publisher reconnects on its next batch; the first ones may fail.
        let deadline = Instant::now() + WAIT;
        let mut sent = 0;
        loop {
            a.publish("lobby".into(), Bytes::from(format!("after {sent}")));
            sent += 1;
            let got = future::or(async { Some(recv(b.bus()).await) }, async {
                async_io::Timer::after(Duration::from_millis(100)).await;
                None
            })
            .await;
            if let Some(got) = got {
                let BusEvent::Message { payload, .. } = got else {
                    panic!("{got:?}");
                };
                assert!(payload.starts_with(b"after "), "{payload:?}");
                break;
            }
            assert!(Instant::now() < deadline, "no delivery after the restart");
        }
        assert_eq!(LinkStats::get(&b.stats().reconnects), 1);
    });
}

#[test]
fn a_frozen_redis_is_answered_for_within_the_timeouts_and_then_recovers() {
    let Some(redis) = redis_or_skip("a_frozen_redis_is_answered_for_within_the_timeouts") else {
        return;
    };
    smol::block_on(async {
        let config = config(&redis);
        let mut registry = RedisRegistry::new(&config);
        let lookup = RegistryRequest::Lookup {
            room: "lobby".into(),
        };
        assert_eq!(exec(&mut registry, &lookup).await, RegistryAnswer::NotFound);
        let b = link(&redis, 16);
        b.set_rooms(vec!["lobby".into()]);
        subscribed(&redis, "lobby", 1).await;

        redis.pause().unwrap();
        // Bounded: the response timeout, then the connect timeout, then failing at once.
        let bound = 2 * (config.response_timeout + config.connect_timeout);
        let answer = future::or(async { Some(registry.execute(&lookup).await) }, async {
            async_io::Timer::after(bound).await;
            None
        })
        .await;
        assert_eq!(answer, Some(Err(Unavailable::Timeout)));
        let answer = future::or(async { Some(registry.execute(&lookup).await) }, async {
            async_io::Timer::after(bound).await;
            None
        })
        .await;
        assert!(
            matches!(answer, Some(Err(Unavailable::Timeout | Unavailable::Down))),
            "{answer:?}"
        );

        redis.resume().unwrap();
        assert_eq!(
            exec_retrying(&mut registry, &lookup).await,
            RegistryAnswer::NotFound
        );
        // The subscriber's ping found the silence, and it came back by itself.
        let event = recv(b.bus()).await;
        assert!(matches!(event, BusEvent::Reconnected { .. }), "{event:?}");
    });
}

#[test]
fn a_full_bus_queue_drops_and_counts_and_keeps_the_first() {
    let Some(redis) = redis_or_skip("a_full_bus_queue_drops_and_counts") else {
        return;
    };
    smol::block_on(async {
        let (a, b) = (link(&redis, 4096), link(&redis, 4));
        b.set_rooms(vec!["lobby".into()]);
        subscribed(&redis, "lobby", 1).await;
        for i in 0..50 {
            a.publish("lobby".into(), Bytes::from(format!("m{i}")));
        }
        until(|| LinkStats::get(&b.stats().received) == 50).await;
        assert_eq!(LinkStats::get(&b.stats().received_dropped), 46);
        for i in 0..4 {
            assert_eq!(
                b.bus().try_recv().unwrap(),
                message("lobby", &format!("m{i}"))
            );
        }
        assert!(b.bus().is_empty());
    });
}
