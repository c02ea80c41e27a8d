//! Graceful shutdown: every member hears the room closed, and the server stops cleanly.

use crate::common::{Runtime, TestServer};
use ocm_smol::client::Outcome;

crate::on_both_runtimes!(
    members_hear_the_server_shut_down,
    relay_clients_hear_the_server_shut_down
);

fn members_hear_the_server_shut_down(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let mut members = Vec::new();
    for (room, host, guest) in [("r1", "alice", "bob"), ("r2", "carol", "dave")] {
        let host_client = server.create(room, host);
        let guest_client = server.join(room, guest);
        // The host heard the join, and the guest's words reached the host: the server
        // knows both addresses.
        host_client.expect(&[&format!("* {guest} joined")]);
        guest_client.say("here");
        host_client.expect(&[&format!("{guest}: here")]);
        members.extend([host_client, guest_client]);
    }
    let stats = server.stop();
    assert_eq!(stats.handshakes(ocm_core::Status::Ok), 4);
    for member in members {
        member.expect(&["* room closed: server shutting down"]);
        assert_eq!(member.outcome(), Outcome::RoomClosed);
    }
}

fn relay_clients_hear_the_server_shut_down(runtime: Runtime) {
    let server = TestServer::relay(runtime);
    let a = server.relay_client("a");
    let b = server.relay_client("b");
    a.expect(&["* b joined"]);
    server.stop();
    for client in [a, b] {
        client.expect(&["* room closed: server shutting down"]);
        assert_eq!(client.outcome(), Outcome::RoomClosed);
    }
}
