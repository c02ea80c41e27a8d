//! Relay mode (the spec's first stage) with three real clients.

use crate::common::{Runtime, TestServer};
use ocm_smol::client::Outcome;

crate::on_both_runtimes!(three_clients_chat_through_the_relay);

fn three_clients_chat_through_the_relay(runtime: Runtime) {
    let server = TestServer::relay(runtime);
    assert_eq!(server.tcp, None, "relay mode has no TCP listener");
    let a = server.relay_client("a");
    let b = server.relay_client("b");
    a.expect(&["* b joined"]);
    let mut c = server.relay_client("c");
    a.expect(&["* c joined"]);
    b.expect(&["* c joined"]);
    let rounds = [
        (&a, "one", [&b, &c]),
        (&b, "two", [&a, &c]),
        (&c, "three", [&a, &b]),
        (&a, "four", [&b, &c]),
        (&b, "five", [&a, &c]),
    ];
    for (speaker, text, listeners) in rounds {
        speaker.say(text);
        for listener in listeners {
            assert_eq!(listener.line(), format!("{}: {text}", speaker.name()));
        }
    }
    c.close_input();
    assert_eq!(c.outcome(), Outcome::Left);
    a.expect(&["* c left"]);
    b.expect(&["* c left"]);
}
