//! Rooms over real sockets: create, join, chat, statuses, leaving, stolen tokens, and
//! the port step that lets a member receive before it speaks.

use crate::common::{raw, Runtime, TestServer};
use ocm_core::{Operation, Status};
use ocm_smol::client::{ClientError, Outcome};

crate::on_both_runtimes!(
    create_join_and_chat_both_ways,
    three_members_see_each_message_once_and_not_their_own,
    refusals_carry_their_status,
    a_member_leaves_then_the_host_closes_the_room,
    a_stolen_token_from_another_ip_is_not_relayed,
    the_port_step_lets_a_member_receive_before_it_speaks,
);

fn create_join_and_chat_both_ways(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let alice = server.create("lobby", "alice");
    let bob = server.join("lobby", "bob");
    alice.expect(&["* bob joined"]);
    bob.say("hi alice");
    alice.expect(&["bob: hi alice"]);
    alice.say("hello bob, ünïcödé ✓");
    bob.expect(&["alice: hello bob, ünïcödé ✓"]);
}

fn three_members_see_each_message_once_and_not_their_own(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let a = server.create("trio", "a");
    let b = server.join("trio", "b");
    a.expect(&["* b joined"]);
    let c = server.join("trio", "c");
    a.expect(&["* c joined"]);
    b.expect(&["* c joined"]);
    // Each round waits until both others have the line before the next speaker talks.
    // Every next line is checked, so an echo or a duplicate shows up as a wrong line.
    let rounds = [
        (&a, "m1", [&b, &c]),
        (&b, "m2", [&a, &c]),
        (&c, "m3", [&a, &b]),
        (&a, "m4", [&b, &c]),
        (&b, "m5", [&a, &c]),
        (&c, "m6", [&a, &b]),
    ];
    for (speaker, text, listeners) in rounds {
        speaker.say(text);
        for listener in listeners {
            assert_eq!(listener.line(), format!("{}: {text}", speaker.name()));
        }
    }
}

fn refusal(
    server: &TestServer,
    operation: Operation,
    room: &str,
    name: &str,
    password: Option<&str>,
) -> ClientError {
    match crate::common::TestClient::start(server.target(operation, room, name, password)) {
        Ok(_) => panic!("{operation:?} {room} as {name} was accepted"),
        Err(error) => error,
    }
}

fn status_of(error: &ClientError) -> Status {
    match error {
        ClientError::Refused { status, .. } => *status,
        other => panic!("not a refusal: {other}"),
    }
}

fn refusals_carry_their_status(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let _host = server.client(server.target(Operation::Create, "vault", "host", Some("s3cret")));

    let missing = refusal(&server, Operation::Join, "nowhere", "bob", None);
    assert_eq!(status_of(&missing), Status::RoomNotFound);
    assert_eq!(missing.to_string(), r#"room "nowhere" does not exist"#);

    let wrong = refusal(&server, Operation::Join, "vault", "bob", Some("guess"));
    assert_eq!(status_of(&wrong), Status::InvalidPassword);
    assert_eq!(wrong.to_string(), r#"wrong password for room "vault""#);

    let exists = refusal(&server, Operation::Create, "vault", "bob", None);
    assert_eq!(status_of(&exists), Status::RoomExists);
    assert_eq!(exists.to_string(), r#"room "vault" already exists"#);

    let taken = refusal(&server, Operation::Join, "vault", "host", Some("s3cret"));
    assert_eq!(status_of(&taken), Status::UsernameTaken);

    let target = server.target(Operation::Join, "vault", "bob", Some("s3cret"));
    crate::common::TestClient::start(target).expect("the right password opens the room");
}

fn a_member_leaves_then_the_host_closes_the_room(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let host = server.create("club", "host");
    let bob = server.join("club", "bob");
    let mut carol = server.join("club", "carol");
    host.expect(&["* bob joined", "* carol joined"]);
    bob.expect(&["* carol joined"]);

    carol.close_input(); // end of input leaves, as /exit does
    assert_eq!(carol.outcome(), Outcome::Left);
    host.expect(&["* carol left"]);
    bob.expect(&["* carol left"]);

    host.say("/exit");
    assert_eq!(host.outcome(), Outcome::Left);
    bob.expect(&["* room closed: host left"]);
    assert_eq!(bob.outcome(), Outcome::RoomClosed);

    let gone = refusal(&server, Operation::Join, "club", "dave", None);
    assert_eq!(
        status_of(&gone),
        Status::RoomNotFound,
        "the room is gone with its host"
    );
}

fn a_stolen_token_from_another_ip_is_not_relayed(runtime: Runtime) {
    let Ok(thief) = raw::udp("127.0.0.2") else {
        eprintln!("skipped: cannot bind 127.0.0.2 on this system");
        return;
    };
    let server = TestServer::rooms(runtime);
    let alice = server.create("den", "alice");
    let carol = raw::udp("127.0.0.1").unwrap();
    let port = carol.local_addr().unwrap().port();
    let token = raw::handshake(server.tcp(), raw::JOIN, "den", "carol", "", Some(port)).unwrap();
    alice.expect(&["* carol joined"]);
    server.wait_known("den", "carol");

    thief
        .send_to(&raw::room_datagram("den", &token, "stolen"), server.udp)
        .unwrap();
    // From the IP that got the token, any port will do.
    let other_port = raw::udp("127.0.0.1").unwrap();
    other_port
        .send_to(&raw::room_datagram("den", &token, "same ip"), server.udp)
        .unwrap();
    carol
        .send_to(&raw::room_datagram("den", &token, "marker"), server.udp)
        .unwrap();
    let before = alice.lines_until("carol: marker");
    assert_eq!(
        before,
        vec!["carol: same ip".to_owned()],
        "only the datagram from the token's IP is relayed"
    );
}

fn the_port_step_lets_a_member_receive_before_it_speaks(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let alice = server.create("quiet", "alice");
    let reader = raw::udp("127.0.0.1").unwrap();
    let port = reader.local_addr().unwrap().port();
    raw::handshake(server.tcp(), raw::JOIN, "quiet", "reader", "", Some(port)).unwrap();
    alice.expect(&["* reader joined"]);
    // Only the port step can have told the server: the reader sends no datagram at all.
    server.wait_known("quiet", "reader");
    let bob = server.join("quiet", "bob");
    alice.expect(&["* bob joined"]);
    alice.say("anyone there?");
    bob.expect(&["alice: anyone there?"]);
    // The reader never sent a datagram, yet it hears everything since its join.
    assert_eq!(raw::recv_text(&reader), "* bob joined");
    assert_eq!(raw::recv_text(&reader), "alice: anyone there?");
}
