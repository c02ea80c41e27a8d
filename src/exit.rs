//! Exit codes of `ocm`, also listed in `ocm --help`.

/// The session ended normally: `/exit`, end of input, or a server stopped by a signal.
pub const OK: u8 = 0;
/// An I/O error: cannot bind, resolve or connect; the server is unreachable.
pub const ERROR: u8 = 1;
/// Bad arguments, or a name or room missing while stdin is not a terminal to ask on.
pub const USAGE: u8 = 2;
/// The server refused the request: room exists, no such room, wrong password, ...
pub const REFUSED: u8 = 3;
/// The server did not answer the handshake in time.
pub const TIMEOUT: u8 = 4;
/// The server disconnected this client (`* disconnected: ...`).
pub const DISCONNECTED: u8 = 5;
/// The room closed (`* room closed: ...`): the host left or the server stopped.
pub const ROOM_CLOSED: u8 = 6;
/// `ocm replay`: the trace did not replay (a broken invariant, or other outputs than
/// recorded).
pub const REPLAY_FAILED: u8 = 7;

/// The table printed at the end of `ocm --help`.
pub const HELP: &str = "\
Exit codes:
  0  left with /exit or end of input; server stopped by Ctrl-C or SIGTERM
  1  I/O error: cannot bind, resolve or connect; server unreachable
  2  usage error, or a missing name or room with no terminal to ask on
  3  the server refused: room exists, no such room, wrong password, name taken, full
  4  the server did not answer in time
  5  disconnected by the server (idle or unreachable for too long)
  6  the room closed (the host left, or the server shut down)
  7  replay: a broken invariant, or outputs other than those recorded";
